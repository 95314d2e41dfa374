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
import type { ClockPort, CryptoPort, HttpPort, Sha256 } from "./ports";
import type { DownloadConfig, RetryConfig } from "./config";
import { OtaError, codeOf, type ErrorCode } from "./errors";
import { backoffDelay, parseRetryAfter } from "./backoff";
import type { UpdateSlot } from "./install";
import { toHex } from "./bytes";
import { attemptComplete, readRoom } from "./download-outcome";
import type { DownloadGate } from "./control";
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
  /** Bandwidth cap, pause and cancel (modules/control.ts). */
  gate?: DownloadGate;
}

type Attempt =
  | { ok: true }
  | { ok: false; code: ErrorCode; detail: string; permanent: boolean; restart: boolean; retryAfterMs?: number };

const RESTART_CODES: readonly ErrorCode[] = constant(["HTTP_RANGE", "HTTP_RANGE_NOT_SATISFIABLE", "DOWNLOAD_ETAG_CHANGED"]);
const PERMANENT_CODES: readonly ErrorCode[] = constant(["HTTP_ENCODING", "HTTP_PROTOCOL", "HTTP_REDIRECT", "HTTP_REDIRECT_LOOP", "HTTP_NOT_FOUND", "HTTP_CLIENT_ERROR", "HTTP_STATUS", "HTTP_TLS", "HTTP_INSECURE_URL", "DOWNLOAD_SIZE", "DOWNLOAD_HASH", "IMAGE_TOO_LARGE", "IMAGE_MAGIC", "IMAGE_CHIP", "IMAGE_PROJECT", "IMAGE_SEGMENTS", "IMAGE_APP_DESC", "IMAGE_TRUNCATED", "IMAGE_VERSION", "DELTA_FORMAT", "DELTA_COMPRESSION", "DELTA_TRUNCATED", "DELTA_OVERRUN", "DELTA_BASE"]);

/** Status -> (code, permanent). 408/429/5xx are retried; other 4xx never are. */
function statusCode(status: number): { code: ErrorCode; permanent: boolean } {
  if (status === 404) return { code: "HTTP_NOT_FOUND", permanent: true };
  if (status === 408 || status === 429) return { code: "HTTP_CLIENT_ERROR", permanent: false };
  if (status >= 400 && status < 500) return { code: "HTTP_CLIENT_ERROR", permanent: true };
  if (status >= 500) return { code: "HTTP_SERVER_ERROR", permanent: false };
  return { code: "HTTP_STATUS", permanent: true };
}

export class Downloader {
  private sha: Sha256;
  private hashedTo = 0;

  constructor(private readonly d: DownloadDeps) {
    if (d.buffer.byteLength < BLOCK) throw new RangeError("download buffer must hold one 4 KB block");
    this.sha = d.crypto.sha256();
  }

  /**
   * Download `job` into the slot (already begun by the caller or begun here). Resolves when every
   * byte is written and the streamed SHA-256 matches. Throws the attempt's code when it is
   * permanent or the attempt cap is reached; DOWNLOAD_HASH; FLASH_* from the slot.
   */
  async run(job: DownloadJob): Promise<{ etag?: string }> {
    let written = job.written - (job.written % BLOCK);
    let etag = job.etag;
    if (written >= job.size) {
      written = job.size;
      this.d.slot.adopt(job.size);
    }
    for (;;) {
      if (written < job.size) {
        const r = await this.attempt(job, written, etag);
        // Decided from what was written and hashed (download-outcome.ts), not from how the connection ended.
        if (attemptComplete(r, this.d.slot.written, job.size)) {
          if (!r.ok) this.d.log(`download: ${r.code} ${r.detail} after the last byte: complete`);
          if (this.d.slot.state === "writing") this.d.slot.complete();
          written = job.size;
          etag = this.lastEtag;
        } else if (r.ok) {
          throw new OtaError("INTERNAL", `attempt ended at byte ${this.d.slot.written} of ${job.size}`);
        } else {
          written = this.d.slot.written - (this.d.slot.written % BLOCK);
          if (r.restart) {
            written = 0;
            etag = undefined;
            this.d.checkpoint(0, undefined);
          } else if (this.lastEtag !== undefined) {
            etag = this.lastEtag;
          }
          if (r.code === "CONTROL_PAUSED" || r.code === "CONTROL_CANCELLED") {
            this.d.checkpoint(written, etag);
            if (r.code === "CONTROL_CANCELLED" || !(await this.d.gate!.whenRunnable())) throw new OtaError("CONTROL_CANCELLED", `at byte ${written}`);
            continue;
          }
          this.d.log(`download: ${r.code} ${r.detail}${r.restart ? " (restart from 0)" : ""}`);
          if (r.permanent) throw new OtaError(r.code, r.detail);
          const attempts = this.d.failedAttempt(r.code, r.detail);
          if (attempts >= this.d.retry.maxAttempts) throw new OtaError(r.code, `${r.detail}; gave up after ${attempts} attempts`);
          this.d.checkpoint(written, etag);
          const delay = r.retryAfterMs ?? backoffDelay(attempts, this.d.retry, this.d.random);
          await this.sleep(delay);
          continue;
        }
      }
      if (this.d.slot.state !== "written") throw new OtaError("INTERNAL", `download done with the slot ${this.d.slot.state}`);
      if (this.hashedTo !== job.size) this.rehash(job.size);
      const digest = toHex(this.sha.close());
      this.hashedTo = 0;
      if (digest !== job.sha256.toLowerCase()) {
        this.d.checkpoint(0, undefined);
        throw new OtaError("DOWNLOAD_HASH", `got ${digest.slice(0, 16)}...`);
      }
      return etag === undefined ? {} : { etag };
    }
  }

  private lastEtag: string | undefined;

  /** A backoff wait; a pause or cancel cuts it short (the next attempt then stops at once). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const gate = this.d.gate;
      const t = this.d.clock.setTimeout(() => {
        if (off) off();
        resolve();
      }, ms);
      const off = gate?.onHalt(() => {
        this.d.clock.clearTimeout(t);
        off!();
        resolve();
      });
    });
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

  private attempt(job: DownloadJob, from: number, etag: string | undefined): Promise<Attempt> {
    const d = this.d;
    const { clock } = d;
    if (!/^https:\/\//i.test(job.url)) return Promise.resolve({ ok: false, code: "HTTP_INSECURE_URL", detail: job.url, permanent: true, restart: false });
    if (this.hashedTo !== from) this.rehash(from);
    d.slot.begin(job.size, from);
    // After begin, so that the run loop reads the resume point back from the slot.
    const halted = d.gate?.halted();
    if (halted) return Promise.resolve({ ok: false, code: halted, detail: `at byte ${from}`, permanent: false, restart: false });
    const headers: [string, string][] = [];
    if (from > 0) {
      headers.push(["range", `bytes=${from}-`]);
      if (etag !== undefined) headers.push(["if-range", etag]);
    }
    this.lastEtag = etag;
    const buf = d.buffer.subarray(0, BLOCK);
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let status = 0;
      let contentRange: string | undefined;
      let retryAfter: string | undefined;
      let newEtag: string | undefined;
      let contentLength: number | undefined;
      let encoding: string | undefined;
      let lengths = 0;
      let ranges = 0;
      let fill = 0;
      let offset = from;
      let lastCheckpoint = from;
      let windowBytes = 0;
      let stallTimer = 0;
      let rateTimer = 0;
      let req: { close(): void; pull?(): void } | undefined;
      const offHalt = d.gate?.onHalt((code) => fail(code, `at byte ${offset}`));
      const finish = (r: Attempt) => {
        if (settled) return;
        settled = true;
        if (offHalt) offHalt();
        clock.clearTimeout(stallTimer);
        clock.clearTimeout(rateTimer);
        if (req) req.close();
        resolve(r);
      };
      const fail = (code: ErrorCode, detail: string, extra: { permanent?: boolean; restart?: boolean; retryAfterMs?: number } = {}) => {
        const r: Attempt = { ok: false, code, detail, permanent: extra.permanent ?? PERMANENT_CODES.indexOf(code) >= 0, restart: extra.restart ?? RESTART_CODES.indexOf(code) >= 0 };
        if (extra.retryAfterMs !== undefined) r.retryAfterMs = extra.retryAfterMs;
        finish(r);
      };
      // The stall timer is armed once and, when it fires, re-armed for what is left of the
      // window since the last bytes: data only notes its time (no timer set and cleared per chunk).
      let lastData = clock.now();
      let stallArmed = false;
      const checkStall = () => {
        const idle = clock.now() - lastData;
        if (idle >= d.download.stallMs) return fail("HTTP_TIMEOUT", `no data for ${d.download.stallMs} ms at byte ${offset + fill}`);
        stallTimer = clock.setTimeout(checkStall, d.download.stallMs - idle);
      };
      const armStall = () => {
        lastData = clock.now();
        if (!stallArmed) stallTimer = clock.setTimeout(checkStall, d.download.stallMs);
        stallArmed = true;
      };
      const armRate = () => {
        rateTimer = clock.setTimeout(() => {
          const rate = (windowBytes * 1000) / d.download.rateWindowMs;
          if (rate < d.download.minBytesPerSec) return fail("HTTP_TIMEOUT", `${Math.floor(rate)} B/s < ${d.download.minBytesPerSec} B/s at byte ${offset + fill}`);
          windowBytes = 0;
          armRate();
        }, d.download.rateWindowMs);
      };
      const flush = () => {
        const block = fill === BLOCK ? buf : buf.subarray(0, fill);
        if (offset === 0) d.checkStart(block);
        d.slot.write(block);
        this.sha.write(block);
        offset += fill;
        this.hashedTo = offset;
        fill = 0;
        d.progress(offset, job.size);
        if (offset - lastCheckpoint >= d.download.journalEveryBytes && offset < job.size) {
          d.checkpoint(offset, this.lastEtag);
          lastCheckpoint = offset;
        }
      };
      const guard = (fn: () => void) => {
        if (settled) return;
        try {
          fn();
        } catch (e) {
          const code = codeOf(e);
          fail(code, e instanceof OtaError ? e.detail : String(e), code === "INTERNAL" || code.startsWith("FLASH_") ? { permanent: true } : {});
        }
      };
      req = d.http.request({ url: job.url, headers }, {
        onStatus: (s) => guard(() => { status = s; }),
        onHeader: (name, value) => guard(() => {
          if (name === "content-range") { contentRange = value; ranges++; }
          else if (name === "etag") newEtag = value;
          else if (name === "retry-after") retryAfter = value;
          else if (name === "content-encoding") encoding = value.trim().toLowerCase();
          else if (name === "content-length") { contentLength = /^\d+$/.test(value) ? Number(value) : undefined; lengths++; }
        }),
        onHeadersComplete: () => guard(() => {
          armStall();
          if (status === 416) return fail("HTTP_RANGE_NOT_SATISFIABLE", `at byte ${from}`);
          if (status >= 300 || status < 200) {
            const { code, permanent } = statusCode(status);
            const ra = status === 429 || status === 503 ? parseRetryAfter(retryAfter, clock.wallTime()) : undefined;
            return fail(code, `status ${status}`, ra === undefined ? { permanent } : { permanent, retryAfterMs: ra });
          }
          // The framing is judged before any byte is taken (RFC 9112 6.3: a repeated Content-Length is an error).
          if (lengths > 1) return fail("HTTP_PROTOCOL", `${lengths} Content-Length headers`, { permanent: true });
          if (encoding !== undefined && encoding !== "identity") return fail("HTTP_ENCODING", `Content-Encoding: ${encoding}`, { permanent: true });
          if (ranges > 1) return fail("HTTP_RANGE", `${ranges} Content-Range headers`);
          if (from > 0) {
            if (etag !== undefined && newEtag !== undefined && newEtag !== etag) return fail("DOWNLOAD_ETAG_CHANGED", `${etag} -> ${newEtag}`);
            if (status !== 206) return fail("HTTP_RANGE", `status ${status} to a Range request`);
            const want = `bytes ${from}-${job.size - 1}/${job.size}`;
            if ((contentRange ?? "").replace(/\s+/g, " ").trim() !== want) return fail("HTTP_RANGE", `Content-Range '${contentRange ?? ""}', wanted '${want}'`);
          } else {
            if (status !== 200) return fail("HTTP_STATUS", `status ${status} to a plain GET`);
          }
          if (contentLength !== undefined && contentLength !== job.size - from) {
            return fail("DOWNLOAD_SIZE", `Content-Length ${contentLength}, expected ${job.size - from}`);
          }
          this.lastEtag = newEtag;
          if (from === 0) d.checkpoint(0, newEtag);
          armRate();
        }),
        onData: (available, read) => guard(() => {
          if (available <= 0) return;
          armStall();
          const gate = d.gate;
          for (;;) {
            const room = readRoom(offset, fill, BLOCK, job.size);
            if (room === 0) {
              // Every byte is in. Past a declared Content-Length the bytes are not the body:
              // the attempt is complete. A chunked or close-delimited body goes on: refused.
              if (contentLength !== undefined) return finish({ ok: true });
              if (read(buf.subarray(0, 1)) <= 0) return;
              return fail("HTTP_TOO_LONG", `body longer than ${job.size} bytes`, { permanent: true, restart: true });
            }
            const allowed = gate ? Math.min(room, gate.allowance()) : room;
            if (allowed <= 0) {
              // Over the cap: leave the bytes unread (the port offers them again) and pull them later.
              gate!.wake(() => guard(() => req?.pull?.()));
              break;
            }
            const n = read(fill === 0 && allowed === BLOCK ? buf : buf.subarray(fill, fill + allowed));
            if (n <= 0) break;
            if (gate) gate.consumed(n);
            windowBytes += n;
            fill += n;
            if (fill === BLOCK || offset + fill === job.size) flush();
            if (settled) return;
          }
        }),
        onComplete: () => guard(() => {
          if (offset !== job.size) return fail("HTTP_CLOSED", `body ended at byte ${offset + fill} of ${job.size}`);
          finish({ ok: true });
        }),
        onError: (code, detail) => guard(() => {
          const c = (code === "HTTP_TLS" || code === "HTTP_INSECURE_URL" || code === "HTTP_CONNECT" || code === "HTTP_CLOSED" || code === "HTTP_TIMEOUT" || code === "HTTP_TOO_LONG" || code === "HTTP_PROTOCOL" || code === "HTTP_REDIRECT" || code === "HTTP_REDIRECT_LOOP") ? code : "HTTP_CLOSED";
          fail(c, detail);
        }),
      });
      if (settled) req.close();
      else armStall();
    });
  }
}
