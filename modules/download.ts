/*
 * Streaming the image into the update slot, with resume and retries.
 *
 * - One caller-owned 4 KB buffer: body bytes fill it, a full block is written (its flash block
 *   erased just before, by UpdateSlot) and hashed, so every write and every resume point is
 *   block aligned.
 * - The first block is checked (magic, chip id, project, size <= slot) before the first write.
 * - Resume: `Range: bytes=N-` + `If-Range: <etag>`. Only a 206 with `Content-Range: bytes
 *   N-(size-1)/size` and the same ETag is appended; anything else restarts from 0 cleanly (a 200
 *   body is never appended), 416 restarts too.
 * - Stalls: no body bytes for `stallMs`, or fewer than `minBytesPerSec` over `rateWindowMs`,
 *   end the attempt with HTTP_TIMEOUT (then resume), so a host that drips bytes cannot park it.
 * - Retries: 404 and other 4xx (not 408/429) are permanent; 408/429/5xx/transport errors back
 *   off with jitter (Retry-After honoured); attempts are counted per release by the caller,
 *   who persists them, so a reboot does not reset the cap.
 * - Control (optional `gate`, modules/control.ts): reads are paced to the bandwidth cap, and a
 *   pause or cancel ends the attempt in flight; a pause waits for resume and is not an attempt.
 */
import type { ClockPort, CryptoPort, HttpHandler, HttpPort, HttpRequest, Sha256 } from "./ports";
import type { DownloadConfig, RetryConfig } from "./config";
import { OtaError, codeOf, type ErrorCode } from "./errors";
import { backoffDelay, parseRetryAfter } from "./backoff";
import type { UpdateSlot } from "./install";
import { toHex } from "./bytes";
import { attemptComplete, readRoom } from "./download-outcome";
import { constant } from "./constant";

export const BLOCK = 4096;

export interface DownloadJob {
  url: string;
  size: number;
  sha256: string;
  /** Bytes already in the slot (journaled) and the ETag they came with. */
  written: number;
  etag?: string;
}

/** What the body goes into: the update slot, or a patch applier in front of it (modules/delta-download.ts). */
export type SlotWriter = Pick<UpdateSlot, "begin" | "write" | "written" | "complete" | "adopt" | "read" | "state">;

/** Why the data path must stop: an operator's pause or cancel (modules/control.ts). */
export type HaltCode = "CONTROL_PAUSED" | "CONTROL_CANCELLED";

export interface HaltListener {
  halted(code: HaltCode): void;
}

/** What the data path asks of the bandwidth cap, pause and cancel (modules/control.ts DownloadGate). */
export interface DownloadGate {
  readonly bytesPerSec: number;
  /** Bytes the data path may read now (Infinity when uncapped). */
  allowance(): number;
  consumed(n: number): void;
  /** Call `fn` once a block's worth of bytes may be read again. */
  wake(fn: () => void): void;
  halted(): HaltCode | undefined;
  watch(l: HaltListener): void;
  unwatch(l: HaltListener): void;
  /** Resolves true on resume, false on cancel (at once when running). */
  whenRunnable(): Promise<boolean>;
}

export interface DownloadDeps {
  http: HttpPort;
  clock: ClockPort;
  crypto: CryptoPort;
  slot: SlotWriter;
  buffer: Uint8Array;
  download: DownloadConfig;
  retry: RetryConfig;
  random: () => number;
  /** Check the first block before anything is written; throws IMAGE_* codes. */
  checkStart(first: Uint8Array): void;
  /** Persist progress (journal): called every `journalEveryBytes` and on every restart from 0. */
  checkpoint(written: number, etag: string | undefined): void;
  progress(written: number, total: number): void;
  /** A failed attempt: persist and return the attempt count for this release. */
  failedAttempt(code: ErrorCode, detail: string): number;
  log(line: string): void;
  /** Bandwidth cap, pause and cancel (modules/control.ts; absent without the control feature). */
  gate?: DownloadGate | undefined;
}

type Attempt =
  | { ok: true }
  | { ok: false; code: ErrorCode; detail: string; permanent: boolean; restart: boolean; retryAfterMs?: number };

const RESTART_CODES: readonly ErrorCode[] = constant(["HTTP_RANGE", "HTTP_RANGE_NOT_SATISFIABLE", "DOWNLOAD_ETAG_CHANGED"]);
const PERMANENT_CODES: readonly ErrorCode[] = constant(["HTTP_ENCODING", "HTTP_PROTOCOL", "HTTP_REDIRECT", "HTTP_REDIRECT_LOOP", "HTTP_NOT_FOUND", "HTTP_CLIENT_ERROR", "HTTP_STATUS", "HTTP_TLS", "HTTP_INSECURE_URL", "DOWNLOAD_SIZE", "DOWNLOAD_HASH", "IMAGE_TOO_LARGE", "IMAGE_MAGIC", "IMAGE_CHIP", "IMAGE_PROJECT", "IMAGE_SEGMENTS", "IMAGE_APP_DESC", "IMAGE_TRUNCATED", "IMAGE_VERSION", "IMAGE_SECURE_VERSION", "DELTA_FORMAT", "DELTA_COMPRESSION", "DELTA_TRUNCATED", "DELTA_OVERRUN", "DELTA_BASE", "ENC_MAGIC", "ENC_KEY", "ENC_TAG", "ENC_TRUNCATED", "ENC_OVERSIZED", "KEY_FORMAT", "KEY_TYPE"]);

/** Status -> (code, permanent). 408/429/5xx are retried; other 4xx never are. */
function statusCode(status: number): { code: ErrorCode; permanent: boolean } {
  if (status === 404) return { code: "HTTP_NOT_FOUND", permanent: true };
  if (status === 408 || status === 429) return { code: "HTTP_CLIENT_ERROR", permanent: false };
  if (status >= 400 && status < 500) return { code: "HTTP_CLIENT_ERROR", permanent: true };
  if (status >= 500) return { code: "HTTP_SERVER_ERROR", permanent: false };
  return { code: "HTTP_STATUS", permanent: true };
}

/** How a download ends: `error` null when every byte is in and the SHA-256 matches. */
export type DownloadDone = (error: unknown, etag?: string) => void;

/**
 * The download as a callback state machine, not an async loop: on the chip a download runs for
 * minutes, and an async function (or a promise per attempt) keeps its frame, promise and resolving
 * functions in RAM all that time. Here only this object and the attempt in flight (Transfer) are live.
 */
export class Downloader implements HaltListener {
  // sha, hashedTo and lastEtag are shared with the attempt in flight (Transfer)
  sha: Sha256;
  hashedTo = 0;
  lastEtag: string | undefined;
  private job: DownloadJob | undefined;
  private written = 0;
  private etag: string | undefined;
  private done: DownloadDone | undefined;
  private adopt = false;
  private sleepTimer = 0;

  constructor(private readonly d: DownloadDeps) {
    if (d.buffer.byteLength < BLOCK) throw new RangeError("download buffer must hold one 4 KB block");
    this.sha = d.crypto.sha256();
  }

  /**
   * Download `job` into the slot (already begun by the caller or begun here). Resolves when every
   * byte is written and the streamed SHA-256 matches. Throws the attempt's code when it is
   * permanent or the attempt cap is reached; DOWNLOAD_HASH; FLASH_* from the slot.
   */
  run(job: DownloadJob): Promise<{ etag?: string }> {
    return new Promise((resolve, reject) => {
      this.start(job, (error, etag) => {
        if (error !== null) reject(error);
        else resolve(etag === undefined ? {} : { etag });
      });
    });
  }

  /** As run(), ending in `done` (once, never synchronously): what the agent uses. */
  start(job: DownloadJob, done: DownloadDone): void {
    this.job = job;
    this.done = done;
    this.written = job.written - (job.written % BLOCK);
    this.etag = job.etag;
    this.adopt = this.written >= job.size;
    Promise.resolve().then(() => this.next());
  }

  private end(error: unknown, etag?: string): void {
    const done = this.done;
    this.done = undefined;
    this.job = undefined;
    if (done) done(error, etag);
  }

  /** The next attempt, or the end: every byte in and hashed. */
  private next(): void {
    const job = this.job!;
    try {
      if (this.adopt) {
        // journaled as complete (a reboot after the last byte): adopt what is in the slot
        this.adopt = false;
        this.written = job.size;
        this.d.slot.adopt(job.size);
      }
      if (this.written < job.size) return this.attempt(job, this.written, this.etag);
      if (this.d.slot.state !== "written") throw new OtaError("INTERNAL", `download done with the slot ${this.d.slot.state}`);
      if (this.hashedTo !== job.size) this.rehash(job.size);
      const digest = toHex(this.sha.close());
      this.hashedTo = 0;
      if (digest !== job.sha256.toLowerCase()) {
        this.d.checkpoint(0, undefined);
        throw new OtaError("DOWNLOAD_HASH", `got ${digest.slice(0, 16)}...`);
      }
      this.end(null, this.etag);
    } catch (e) {
      this.end(e);
    }
  }

  /** An attempt ended (called from a microtask, never inside the HTTP port's callback). */
  attempted(r: Attempt): void {
    const job = this.job!;
    const d = this.d;
    try {
      // Decided from what was written and hashed (download-outcome.ts), not from how the connection ended.
      if (attemptComplete(r, d.slot.written, job.size)) {
        if (!r.ok) d.log(`download: ${r.code} ${r.detail} after the last byte: complete`);
        if (d.slot.state === "writing") d.slot.complete();
        this.written = job.size;
        this.etag = this.lastEtag;
        return this.next();
      }
      if (r.ok) throw new OtaError("INTERNAL", `attempt ended at byte ${d.slot.written} of ${job.size}`);
      let written = d.slot.written - (d.slot.written % BLOCK);
      if (r.restart) {
        written = 0;
        this.etag = undefined;
        d.checkpoint(0, undefined);
      } else if (this.lastEtag !== undefined) {
        this.etag = this.lastEtag;
      }
      this.written = written;
      if (r.code === "CONTROL_PAUSED" || r.code === "CONTROL_CANCELLED") {
        d.checkpoint(written, this.etag);
        if (r.code === "CONTROL_CANCELLED") throw new OtaError("CONTROL_CANCELLED", `at byte ${written}`);
        d.gate!.whenRunnable().then((runnable) => {
          if (runnable) this.next();
          else this.end(new OtaError("CONTROL_CANCELLED", `at byte ${written}`));
        }, (e: unknown) => this.end(e));
        return;
      }
      d.log(`download: ${r.code} ${r.detail}${r.restart ? " (restart from 0)" : ""}`);
      if (r.permanent) throw new OtaError(r.code, r.detail);
      const attempts = d.failedAttempt(r.code, r.detail);
      if (attempts >= d.retry.maxAttempts) throw new OtaError(r.code, `${r.detail}; gave up after ${attempts} attempts`);
      d.checkpoint(written, this.etag);
      this.sleep(r.retryAfterMs ?? backoffDelay(attempts, d.retry, d.random));
    } catch (e) {
      this.end(e);
    }
  }

  /** A backoff wait; a pause or cancel cuts it short (the next attempt then stops at once). */
  private sleep(ms: number): void {
    this.sleepTimer = this.d.clock.setTimeout(() => {
      this.sleepTimer = 0;
      if (this.d.gate) this.d.gate.unwatch(this);
      this.next();
    }, ms);
    if (this.d.gate) this.d.gate.watch(this);
  }

  /** A pause or cancel during the backoff wait cuts it short (the next attempt then stops at once). */
  halted(): void {
    if (!this.sleepTimer) return;
    this.d.clock.clearTimeout(this.sleepTimer);
    this.sleepTimer = 0;
    this.d.gate!.unwatch(this);
    this.next();
  }

  /** Hash what is already in flash up to `to` (after a reboot the streamed state is gone). */
  private rehash(to: number): void {
    this.sha.reset();
    const buf = this.d.buffer;
    for (let off = 0; off < to; off += BLOCK) {
      const n = Math.min(BLOCK, to - off);
      const view = buf.subarray(0, n);
      this.d.slot.read(off, view);
      this.sha.write(view);
    }
    this.hashedTo = to;
  }

  /** Ends in attempted(), from a microtask. */
  settle(r: Attempt): void {
    Promise.resolve(r).then((x) => this.attempted(x));
  }

  private attempt(job: DownloadJob, from: number, etag: string | undefined): void {
    const d = this.d;
    if (!/^https:\/\//i.test(job.url)) return this.settle({ ok: false, code: "HTTP_INSECURE_URL", detail: job.url, permanent: true, restart: false });
    if (this.hashedTo !== from) this.rehash(from);
    d.slot.begin(job.size, from);
    // After begin, so that attempted() reads the resume point back from the slot.
    const halted = d.gate?.halted();
    if (halted) return this.settle({ ok: false, code: halted, detail: `at byte ${from}`, permanent: false, restart: false });
    const headers: [string, string][] = [];
    if (from > 0) {
      headers.push(["range", `bytes=${from}-`]);
      if (etag !== undefined) headers.push(["if-range", etag]);
    }
    this.lastEtag = etag;
    new Transfer(this, d, job, from, etag, headers);
  }
}

/**
 * One attempt: the request's handler and its state. A class, not closures in `attempt`: its
 * methods stay in flash on the device (the agent is preloaded), where a dozen closures and their
 * environment were made in RAM for every attempt.
 */
class Transfer implements HttpHandler, HaltListener {
  private settled = false;
  private status = 0;
  private contentRange: string | undefined;
  private retryAfter: string | undefined;
  private newEtag: string | undefined;
  private contentLength: number | undefined;
  private encoding: string | undefined;
  private lengths = 0;
  private ranges = 0;
  private fill = 0;
  private offset: number;
  private lastCheckpoint: number;
  private windowBytes = 0;
  // One timer watches both the stall (no bytes for stallMs) and the rate window, at whichever is
  // due first; data only notes its time (no timer set and cleared per chunk). One timer, not two:
  // each pending timer holds a callback, a closure and a host timer in RAM on the device.
  private timer = 0;
  private timerAt = 0;
  /** When the rate window ends (0: not watched yet, before the headers). */
  private rateAt = 0;
  private lastData: number;
  private readonly tick = () => this.onTimer();
  private readonly buf: Uint8Array;
  private readonly req: HttpRequest;

  constructor(
    private readonly owner: Downloader,
    private readonly d: DownloadDeps,
    private readonly job: DownloadJob,
    private readonly from: number,
    private readonly etag: string | undefined,
    headers: [string, string][],
  ) {
    this.offset = from;
    this.lastCheckpoint = from;
    this.buf = d.buffer.subarray(0, BLOCK);
    this.lastData = d.clock.now();
    if (d.gate) d.gate.watch(this);
    this.req = d.http.request({ url: job.url, headers }, this);
    if (this.settled) this.req.close();
    else this.armStall();
  }

  private finish(r: Attempt): void {
    if (this.settled) return;
    this.settled = true;
    if (this.d.gate) this.d.gate.unwatch(this);
    this.d.clock.clearTimeout(this.timer);
    // during the request() call itself there is no req yet: the constructor closes it
    if (this.req) this.req.close();
    this.owner.settle(r);
  }

  private fail(code: ErrorCode, detail: string, extra: { permanent?: boolean; restart?: boolean; retryAfterMs?: number } = {}): void {
    const r: Attempt = { ok: false, code, detail, permanent: extra.permanent ?? PERMANENT_CODES.indexOf(code) >= 0, restart: extra.restart ?? RESTART_CODES.indexOf(code) >= 0 };
    if (extra.retryAfterMs !== undefined) r.retryAfterMs = extra.retryAfterMs;
    this.finish(r);
  }

  /** What a handler threw ends the attempt: FLASH_* and INTERNAL for good. */
  private caught(e: unknown): void {
    const code = codeOf(e);
    this.fail(code, e instanceof OtaError ? e.detail : String(e), code === "INTERNAL" || code.startsWith("FLASH_") ? { permanent: true } : {});
  }

  /** Arm the one timer for the stall or the rate window, whichever is due first (unless it is armed for earlier). */
  private arm(): void {
    const stallAt = this.lastData + this.d.download.stallMs;
    const due = this.rateAt !== 0 && this.rateAt < stallAt ? this.rateAt : stallAt;
    if (this.timer !== 0 && this.timerAt <= due) return;
    const clock = this.d.clock;
    clock.clearTimeout(this.timer);
    this.timerAt = due;
    this.timer = clock.setTimeout(this.tick, Math.max(0, due - clock.now()));
  }

  private onTimer(): void {
    this.timer = 0;
    if (this.settled) return;
    const dl = this.d.download;
    const now = this.d.clock.now();
    if (now - this.lastData >= dl.stallMs) return this.fail("HTTP_TIMEOUT", `no data for ${dl.stallMs} ms at byte ${this.offset + this.fill}`);
    if (this.rateAt !== 0 && now >= this.rateAt) {
      const rate = (this.windowBytes * 1000) / dl.rateWindowMs;
      if (rate < dl.minBytesPerSec) return this.fail("HTTP_TIMEOUT", `${Math.floor(rate)} B/s < ${dl.minBytesPerSec} B/s at byte ${this.offset + this.fill}`);
      this.windowBytes = 0;
      this.rateAt = now + dl.rateWindowMs;
    }
    this.arm();
  }

  private armStall(): void {
    this.lastData = this.d.clock.now();
    this.arm();
  }

  private armRate(): void {
    this.rateAt = this.d.clock.now() + this.d.download.rateWindowMs;
    this.arm();
  }

  private flush(): void {
    const { d, owner, job } = this;
    const block = this.fill === BLOCK ? this.buf : this.buf.subarray(0, this.fill);
    if (this.offset === 0) d.checkStart(block);
    d.slot.write(block);
    owner.sha.write(block);
    this.offset += this.fill;
    owner.hashedTo = this.offset;
    this.fill = 0;
    d.progress(this.offset, job.size);
    if (this.offset - this.lastCheckpoint >= d.download.journalEveryBytes && this.offset < job.size) {
      d.checkpoint(this.offset, owner.lastEtag);
      this.lastCheckpoint = this.offset;
    }
  }

  /** A pause or cancel (modules/control.ts) ends the attempt. */
  halted(code: HaltCode): void {
    this.fail(code, `at byte ${this.offset}`);
  }

  onStatus(s: number): void {
    if (!this.settled) this.status = s;
  }

  onHeader(name: string, value: string): void {
    if (this.settled) return;
    try {
      if (name === "content-range") { this.contentRange = value; this.ranges++; }
      else if (name === "etag") this.newEtag = value;
      else if (name === "retry-after") this.retryAfter = value;
      else if (name === "content-encoding") this.encoding = value.trim().toLowerCase();
      else if (name === "content-length") { this.contentLength = /^\d+$/.test(value) ? Number(value) : undefined; this.lengths++; }
    } catch (e) {
      this.caught(e);
    }
  }

  onHeadersComplete(): void {
    if (this.settled) return;
    try {
      this.headersComplete();
    } catch (e) {
      this.caught(e);
    }
  }

  private headersComplete(): void {
    const { status, from, etag, job, newEtag, contentRange, contentLength } = this;
    this.armStall();
    if (status === 416) return this.fail("HTTP_RANGE_NOT_SATISFIABLE", `at byte ${from}`);
    if (status >= 300 || status < 200) {
      const { code, permanent } = statusCode(status);
      const ra = status === 429 || status === 503 ? parseRetryAfter(this.retryAfter, this.d.clock.wallTime()) : undefined;
      return this.fail(code, `status ${status}`, ra === undefined ? { permanent } : { permanent, retryAfterMs: ra });
    }
    // The framing is judged before any byte is taken (RFC 9112 6.3: a repeated Content-Length is an error).
    if (this.lengths > 1) return this.fail("HTTP_PROTOCOL", `${this.lengths} Content-Length headers`, { permanent: true });
    if (this.encoding !== undefined && this.encoding !== "identity") return this.fail("HTTP_ENCODING", `Content-Encoding: ${this.encoding}`, { permanent: true });
    if (this.ranges > 1) return this.fail("HTTP_RANGE", `${this.ranges} Content-Range headers`);
    if (from > 0) {
      if (etag !== undefined && newEtag !== undefined && newEtag !== etag) return this.fail("DOWNLOAD_ETAG_CHANGED", `${etag} -> ${newEtag}`);
      if (status !== 206) return this.fail("HTTP_RANGE", `status ${status} to a Range request`);
      const want = `bytes ${from}-${job.size - 1}/${job.size}`;
      if ((contentRange ?? "").replace(/\s+/g, " ").trim() !== want) return this.fail("HTTP_RANGE", `Content-Range '${contentRange ?? ""}', wanted '${want}'`);
    } else {
      if (status !== 200) return this.fail("HTTP_STATUS", `status ${status} to a plain GET`);
    }
    if (contentLength !== undefined && contentLength !== job.size - from) {
      return this.fail("DOWNLOAD_SIZE", `Content-Length ${contentLength}, expected ${job.size - from}`);
    }
    this.owner.lastEtag = newEtag;
    if (from === 0) this.d.checkpoint(0, newEtag);
    this.armRate();
  }

  onData(available: number, read: (target: Uint8Array) => number): void {
    if (this.settled) return;
    try {
      this.data(available, read);
    } catch (e) {
      this.caught(e);
    }
  }

  private data(available: number, read: (target: Uint8Array) => number): void {
    if (available <= 0) return;
    this.armStall();
    const { gate } = this.d;
    const { job, buf } = this;
    for (;;) {
      const room = readRoom(this.offset, this.fill, BLOCK, job.size);
      if (room === 0) {
        // Every byte is in. Past a declared Content-Length the bytes are not the body:
        // the attempt is complete. A chunked or close-delimited body goes on: refused.
        if (this.contentLength !== undefined) return this.finish({ ok: true });
        if (read(buf.subarray(0, 1)) <= 0) return;
        return this.fail("HTTP_TOO_LONG", `body longer than ${job.size} bytes`, { permanent: true, restart: true });
      }
      const allowed = gate ? Math.min(room, gate.allowance()) : room;
      if (allowed <= 0) {
        // Over the cap: leave the bytes unread (the port offers them again) and pull them later.
        gate!.wake(() => this.pullLater());
        break;
      }
      const fill = this.fill;
      const n = read(fill === 0 && allowed === BLOCK ? buf : buf.subarray(fill, fill + allowed));
      if (n <= 0) break;
      if (gate) gate.consumed(n);
      this.windowBytes += n;
      this.fill += n;
      if (this.fill === BLOCK || this.offset + this.fill === job.size) this.flush();
      if (this.settled) return;
    }
  }

  private pullLater(): void {
    if (this.settled) return;
    try {
      this.req.pull?.();
    } catch (e) {
      this.caught(e);
    }
  }

  onComplete(): void {
    if (this.settled) return;
    try {
      if (this.offset !== this.job.size) return this.fail("HTTP_CLOSED", `body ended at byte ${this.offset + this.fill} of ${this.job.size}`);
      this.finish({ ok: true });
    } catch (e) {
      this.caught(e);
    }
  }

  onError(code: string, detail: string): void {
    if (this.settled) return;
    try {
      const c = (code === "HTTP_TLS" || code === "HTTP_INSECURE_URL" || code === "HTTP_CONNECT" || code === "HTTP_CLOSED" || code === "HTTP_TIMEOUT" || code === "HTTP_TOO_LONG" || code === "HTTP_PROTOCOL" || code === "HTTP_REDIRECT" || code === "HTTP_REDIRECT_LOOP") ? code : "HTTP_CLOSED";
      this.fail(c, detail);
    } catch (e) {
      this.caught(e);
    }
  }
}
