/*
 * HttpPort over node:https for the simulated device: https: only (an http: URL is refused
 * before any socket opens), TLS trusting ONLY the pinned CA (`ca`, no system roots,
 * rejectUnauthorized), Connection: close like Moddable's http. While a request is in flight it
 * holds the VirtualClock (time does not jump under real I/O) and marks activity per chunk.
 */
import { request as httpsRequest, type RequestOptions } from "node:https";
import { createSecureContext, type SecureContext } from "node:tls";
import type { ClientRequest, IncomingMessage } from "node:http";
import type { HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "../../../modules/ports";
import type { ErrorCode } from "../../../modules/errors";
import type { VirtualClock } from "../../../backend/clock";

export interface NodeHttpOptions {
  /** PEM of the pinned CA (or the server certificate itself). Required: there is no default trust. */
  ca: string | string[];
  clock?: VirtualClock;
  /**
   * Until response headers arrive, keep marking activity for up to this many REAL ms (default
   * 15 000): a TLS handshake slowed by a busy machine (other processes on 2 cores) must not
   * look like a silent server and let virtual time jump to the stall timer. A host that truly
   * never answers is still timed out, 15 s of real time later.
   */
  connectGraceMs?: number;
  /** The response head's size limit (the device's header buffer), default 8192 bytes: past it, HTTP_PROTOCOL. */
  maxHeaderBytes?: number;
}

/**
 * One real-time ticker per VirtualClock, shared by every request in flight on it (a fleet has
 * thousands): while any request awaits its headers within the connect grace it marks activity,
 * and when the ticker itself runs late (this process was starved, so silence on a socket says
 * nothing about the server) it marks activity too. Requests join at start and leave at their end.
 */
/** A request in its connect grace: until when (real ms), and what ends it. */
interface Grace {
  until: number;
  expire(): void;
}

class ActivityTicker {
  private members = 0;
  /**
   * Requests in their connect grace, in start order: in order of expiry when they share one
   * connectGraceMs (with different ones, a shorter grace may end late, never early).
   */
  private grace = new Set<Grace>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private last = 0;

  constructor(private readonly clock: VirtualClock) {}

  join(): void {
    if (this.members++ === 0) {
      this.last = performance.now();
      this.timer = setInterval(() => this.tick(), 5);
    }
  }

  leave(): void {
    if (--this.members === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  inGrace(g: Grace): void {
    this.grace.add(g);
  }

  outOfGrace(g: Grace): void {
    this.grace.delete(g);
  }

  private tick(): void {
    const now = performance.now();
    for (const g of this.grace) {
      if (g.until > now) break;
      this.grace.delete(g);
      g.expire();
    }
    if (this.grace.size > 0 || now - this.last > 25) this.clock.activity();
    this.last = now;
  }
}

/**
 * The TLS context of a pinned CA, made once: passing `ca` to every request makes Node parse the
 * PEM and build a context per connection, which a fleet of thousands pays on every request.
 * The context trusts that CA alone, as `ca` did (no system roots).
 */
const contexts = new Map<string, SecureContext>();
export function contextFor(ca: string | string[]): SecureContext {
  const key = Array.isArray(ca) ? ca.join("\n") : ca;
  let c = contexts.get(key);
  if (!c) contexts.set(key, (c = createSecureContext({ ca })));
  return c;
}

const tickers = new WeakMap<VirtualClock, ActivityTicker>();
function tickerOf(clock: VirtualClock): ActivityTicker {
  let t = tickers.get(clock);
  if (!t) tickers.set(clock, (t = new ActivityTicker(clock)));
  return t;
}

const HIGH_WATER = 64 * 1024;
const LOW_WATER = 16 * 1024;

// Node's TLS errors and OpenSSL's X509 verify codes (some name neither CERT nor SSL: PATH_LENGTH_EXCEEDED, INVALID_CA, ...).
const TLS_ERRORS = /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME|ERR_OSSL|PATH_LENGTH|INVALID_CA|INVALID_PURPOSE|CRL|CHAIN_TOO_LONG/i;

function errorCode(err: NodeJS.ErrnoException): ErrorCode {
  const c = err.code ?? "";
  // llhttp's verdicts: a repeated Content-Length, a header past maxHeaderSize, bad chunk framing.
  if (c.startsWith("HPE_")) return "HTTP_PROTOCOL";
  if (TLS_ERRORS.test(c) || TLS_ERRORS.test(err.message)) return "HTTP_TLS";
  if (c === "ECONNREFUSED" || c === "ENOTFOUND" || c === "EHOSTUNREACH" || c === "ENETUNREACH" || c === "EAI_AGAIN") return "HTTP_CONNECT";
  return "HTTP_CLOSED";
}

export class NodeHttp implements HttpPort {
  readonly stats = { requests: 0, connections: 0, refused: 0, bytes: 0 };
  private readonly live = new Set<{ close(): void }>();
  private awaiting = 0;

  /** Requests still waiting for their response headers (within the connect grace): virtual time must not jump. */
  get waiting(): number {
    return this.awaiting;
  }

  constructor(private readonly options: NodeHttpOptions) {
    if (!options.ca || (Array.isArray(options.ca) && options.ca.length === 0)) throw new TypeError("NodeHttp needs a pinned CA");
  }

  /** Abort every request in flight (the device lost power). */
  closeAll(): void {
    for (const r of [...this.live]) r.close();
  }

  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest {
    this.stats.requests++;
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    let closed = false;
    const later = (fn: () => void) => setImmediate(() => { if (!closed) fn(); });
    if (!url || url.protocol !== "https:") {
      this.stats.refused++;
      later(() => { closed = true; handler.onError(url ? "HTTP_INSECURE_URL" : "HTTP_CONNECT", `refused ${options.url}: https: only`); });
      return { close() { closed = true; } };
    }
    const clock = this.options.clock;
    const hold = clock ? clock.hold() : () => {};
    // Before the headers: activity for up to connectGraceMs of real time (see NodeHttpOptions).
    // After: activity only when the shared ticker runs late.
    const ticker = clock ? tickerOf(clock) : undefined;
    let inGrace = false;
    const grace: Grace = {
      until: performance.now() + (this.options.connectGraceMs ?? 15_000),
      expire: () => {
        if (inGrace) this.awaiting--;
        inGrace = false;
      },
    };
    const stopGrace = () => {
      ticker?.outOfGrace(grace);
      grace.expire();
    };
    if (ticker) {
      ticker.join();
      inGrace = true;
      this.awaiting++;
      ticker.inGrace(grace);
    }
    let released = false;
    const release = () => {
      stopGrace();
      if (ticker && !released) ticker.leave();
      released = true;
      hold();
    };
    const headers: Record<string, string> = { connection: "close" };
    for (const [n, v] of options.headers ?? []) headers[n.toLowerCase()] = v;
    const ro: RequestOptions & { secureContext: SecureContext } = {
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port ? Number(url.port) : 443,
      path: url.pathname + url.search,
      method: options.method ?? "GET",
      headers,
      // The request's own anchors (a redirect host's CA, a root's anchors) replace the pinned CA.
      secureContext: contextFor(options.ca ?? this.options.ca),
      rejectUnauthorized: true,
      agent: false,
      maxHeaderSize: this.options.maxHeaderBytes ?? 8192,
    };
    let req: ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    const queue: Uint8Array[] = [];
    let queued = 0;
    let ended = false;
    const entry = {
      close: () => {
        if (closed) return;
        closed = true;
        this.live.delete(entry);
        release();
        if (res) res.destroy();
        if (req) req.destroy();
      },
      // A handler that left bytes unread (a bandwidth cap) asks for them again.
      pull: () => deliver(),
    };
    this.live.add(entry);
    const fail = (code: ErrorCode, detail: string) => {
      if (closed) return;
      entry.close();
      handler.onError(code, detail);
    };
    const read = (target: Uint8Array): number => {
      let n = 0;
      while (n < target.byteLength && queue.length) {
        const head = queue[0]!;
        const take = Math.min(head.byteLength, target.byteLength - n);
        target.set(head.subarray(0, take), n);
        n += take;
        if (take === head.byteLength) queue.shift();
        else queue[0] = head.subarray(take);
      }
      queued -= n;
      if (res && res.isPaused() && queued < LOW_WATER) res.resume();
      return n;
    };
    const deliver = () => {
      if (closed) return;
      if (queued > 0) handler.onData(queued, read);
      if (closed) return;
      if (ended && queued === 0) {
        entry.close();
        handler.onComplete();
      }
    };
    try {
      req = httpsRequest(ro, (r) => {
        res = r;
        stopGrace();
        if (closed) return;
        clock?.activity();
        handler.onStatus(r.statusCode ?? 0);
        for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) {
          if (closed) return;
          handler.onHeader(r.rawHeaders[i]!.toLowerCase(), r.rawHeaders[i + 1]!);
        }
        if (closed) return;
        handler.onHeadersComplete();
        r.on("data", (chunk: Buffer) => {
          if (closed) return;
          clock?.activity();
          this.stats.bytes += chunk.byteLength;
          queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          queued += chunk.byteLength;
          // TCP flow control, as the chip's receive window gives it: a reader that does not keep
          // up (a bandwidth cap) stops the socket instead of the whole body piling up here.
          if (queued > HIGH_WATER) r.pause();
          deliver();
        });
        r.on("end", () => {
          ended = true;
          deliver();
        });
        r.on("aborted", () => fail("HTTP_CLOSED", "connection closed mid-body"));
        r.on("error", (e: NodeJS.ErrnoException) => fail(errorCode(e) === "HTTP_PROTOCOL" ? "HTTP_PROTOCOL" : "HTTP_CLOSED", e.message));
        r.on("close", () => { if (!ended) fail("HTTP_CLOSED", "connection closed before the body was complete"); });
      });
    } catch (e) {
      later(() => fail("HTTP_CONNECT", (e as Error).message));
      return entry;
    }
    req.on("socket", () => { this.stats.connections++; });
    req.on("error", (e: NodeJS.ErrnoException) => fail(errorCode(e), `${e.code ?? ""} ${e.message}`.trim()));
    req.end();
    return entry;
  }
}
