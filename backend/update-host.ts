/*
 * The local update host: a static tree (and in-memory routes) over real HTTPS on loopback,
 * with the HTTP semantics a resuming OTA client relies on (RFC 9110): Range -> 206 with
 * Content-Range, strong ETag, If-Range, HEAD, 416 with "bytes * /size", If-None-Match -> 304;
 * plus per-path hostile faults (backend/release/host-faults.ts) and per-request statistics.
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { readFileSync, statSync } from "node:fs";
import { resolve, sep, extname } from "node:path";
import { createHash } from "node:crypto";
import type { VirtualClock } from "./clock";
import { FaultSet, type Fault } from "./release/host-faults";

export type { Fault } from "./release/host-faults";

export interface RequestLog {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
  /** Body bytes sent (so far, for a response still in flight). */
  bytes: number;
  fault?: string;
}

export interface HostStats {
  requests: number;
  bytesSent: number;
  log: RequestLog[];
}

export interface UpdateHostOptions {
  /** Directory served as the root (paths are confined to it). */
  dir?: string;
  /** In-memory bodies by path ("/images/x.bin"); they take precedence over `dir`. */
  routes?: Record<string, Uint8Array>;
  cert: string;
  key: string;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Drives the "drip" fault (virtual time); without it drip uses real 10 ms ticks. */
  clock?: VirtualClock;
  faults?: Record<string, Fault | Fault[]>;
  /**
   * Answer every GET/HEAD with 302 to this base URL + the request's path and query (a CDN or
   * an S3 pre-signed URL in front of the real host): xsota serve --redirect-to.
   */
  redirectTo?: string;
  /** Called once per request when its response is over (complete, cut or aborted). */
  onLog?: (entry: RequestLog) => void;
}

export interface UpdateHost {
  url: string;
  port: number;
  stats: HostStats;
  setFault(path: string, fault: Fault | Fault[] | null): void;
  /** Serve `body` at `path` (null removes it). Its ETag is taken now: set it again after changing the bytes. */
  setRoute(path: string, body: Uint8Array | null): void;
  /** Zero the statistics. */
  resetStats(): void;
  close(): Promise<void>;
}

interface Resource {
  body: Uint8Array;
  etag: string;
}

const CHUNK = 16 * 1024;

function etagOf(body: Uint8Array): string {
  return `"${createHash("sha256").update(body).digest("hex").slice(0, 32)}"`;
}

function contentType(path: string): string {
  const ext = extname(path).toLowerCase();
  return ext === ".json" ? "application/json" : ext === ".html" ? "text/html; charset=utf-8" : ext === ".pem" ? "application/x-pem-file" : "application/octet-stream";
}

/** A single "bytes=" range -> [start, end] inclusive, "unsatisfiable", or null (ignore the header). */
export function parseRange(header: string, size: number): [number, number] | "unsatisfiable" | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return null; // invalid: ignored per RFC 9110
  if (start >= size) return "unsatisfiable";
  return [start, end];
}

/** Start the host. Resolves once it listens. */
export async function startUpdateHost(options: UpdateHostOptions): Promise<UpdateHost> {
  const root = options.dir ? resolve(options.dir) : undefined;
  // A route's ETag is computed once, when it is set (as a static server derives it from the
  // file's identity, not per request): set the route again to change its bytes.
  const routes = new Map<string, Resource>();
  const putRoute = (path: string, body: Uint8Array) => routes.set(path, { body, etag: etagOf(body) });
  for (const [p, b] of Object.entries(options.routes ?? {})) putRoute(p, b);
  const faults = new Map<string, FaultSet>();
  const served = new Map<string, number>(); // body bytes sent per path (change-etag)
  const cache = new Map<string, { mtime: number; size: number; res: Resource }>();
  const sockets = new Set<Socket>();
  const timers = new Set<number>();
  const stats: HostStats = { requests: 0, bytesSent: 0, log: [] };
  const setFault = (path: string, f: Fault | Fault[] | null) => {
    if (f === null) faults.delete(path);
    else faults.set(path, new FaultSet(Array.isArray(f) ? f : [f]));
  };
  for (const [p, f] of Object.entries(options.faults ?? {})) setFault(p, f);

  function lookup(path: string): Resource | undefined {
    const mem = routes.get(path);
    if (mem) return mem;
    if (!root) return undefined;
    const file = resolve(root, "." + path);
    if (file !== root && !file.startsWith(root + sep)) return undefined;
    try {
      const st = statSync(file);
      if (!st.isFile()) return undefined;
      const hit = cache.get(file);
      if (hit && hit.mtime === st.mtimeMs && hit.size === st.size) return hit.res;
      const body = new Uint8Array(readFileSync(file));
      const res = { body, etag: etagOf(body) };
      cache.set(file, { mtime: st.mtimeMs, size: st.size, res });
      return res;
    } catch {
      return undefined;
    }
  }

  function later(fn: () => void, ms: number): void {
    if (options.clock) {
      const id = options.clock.setTimeout(() => {
        timers.delete(id);
        fn();
      }, ms);
      timers.add(id);
    } else setTimeout(fn, 10);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    stats.requests++;
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? "/").split("?")[0]!);
    } catch {
      path = "/";
    }
    const method = req.method ?? "GET";
    const entry: RequestLog = { method, path, status: 0, bytes: 0 };
    if (req.headers.range) entry.range = req.headers.range;
    if (req.headers["if-range"]) entry.ifRange = String(req.headers["if-range"]);
    stats.log.push(entry);
    if (options.onLog) res.once("close", () => options.onLog!(entry));
    const fs = faults.get(path);
    const simple = (status: number, text: string, headers: Record<string, string> = {}) => {
      entry.status = status;
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
      res.end(method === "HEAD" ? undefined : text);
    };
    if (method !== "GET" && method !== "HEAD") return simple(405, "method not allowed\n", { allow: "GET, HEAD" });
    if (options.redirectTo !== undefined) {
      const location = options.redirectTo.replace(/\/+$/, "") + (req.url ?? "/");
      return simple(302, `redirect to ${location}\n`, { location });
    }
    if (fs) {
      const st = fs.nextStatus();
      if (st !== undefined) {
        entry.fault = "status";
        return simple(st, `fault: status ${st}\n`);
      }
      const ra = fs.take("retry-after");
      if (ra) {
        entry.fault = "retry-after";
        return simple(ra.status ?? 503, "fault: retry later\n", { "retry-after": String(ra.seconds) });
      }
      if (fs.take("not-found")) {
        entry.fault = "not-found";
        return simple(404, "not found\n");
      }
    }
    let resource = lookup(path);
    if (!resource) return simple(404, "not found\n");
    const ce = fs?.take("change-etag", false);
    if (ce && (served.get(path) ?? 0) >= ce.afterBytes) {
      const body = ce.body ?? resource.body;
      resource = { body, etag: `"${resource.etag.slice(1, -1)}-changed"` };
      entry.fault = "change-etag";
    }
    const { body, etag } = resource;
    const size = body.length;
    const headers: Record<string, string | number> = {
      "content-type": contentType(path),
      "accept-ranges": "bytes",
      etag,
      "cache-control": path.endsWith(".json") ? "no-cache" : "public, max-age=31536000, immutable",
    };
    if (req.headers["if-none-match"] === etag && !req.headers.range) {
      entry.status = 304;
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const rangeHeader = req.headers.range;
    const ifRange = req.headers["if-range"];
    const ignore = fs?.take("ignore-range");
    if (rangeHeader && ignore) entry.fault = "ignore-range";
    if (rangeHeader && !ignore && (ifRange === undefined || ifRange === etag)) {
      const r = parseRange(rangeHeader, size);
      if (r === "unsatisfiable") return simple(416, `range not satisfiable: ${rangeHeader} of ${size} bytes\n`, { "content-range": `bytes */${size}`, etag });
      if (r) {
        [start, end] = r;
        status = 206;
        const wrong = fs?.take("wrong-content-range");
        if (wrong) {
          const shift = wrong.shift ?? 512;
          start = Math.min(Math.max(0, start + shift), size - 1);
          entry.fault = "wrong-content-range";
        }
        headers["content-range"] = `bytes ${start}-${end}/${size}`;
      }
    }
    const length = Math.max(0, end - start + 1);
    const over = method === "GET" ? fs?.take("overlong") : undefined;
    const extra = over ? over.extra ?? 64 : 0;
    headers["content-length"] = length + (over?.declared ? extra : 0);
    entry.status = status;
    res.writeHead(status, headers);
    if (method === "HEAD") return void res.end();
    if (over) entry.fault = "overlong";
    const cut = fs?.take("cut-at");
    const cutAt = cut && cut.at >= start && cut.at < start + length ? cut.at : undefined;
    if (cutAt !== undefined) entry.fault = "cut-at";
    const drip = fs?.take("drip");
    if (drip) entry.fault = "drip";
    const stopAt = cutAt ?? start + length; // absolute offset where this response stops
    const send = (chunk: Uint8Array, then: () => void) => {
      entry.bytes += chunk.length;
      stats.bytesSent += chunk.length;
      served.set(path, (served.get(path) ?? 0) + chunk.length);
      if (res.write(chunk)) then();
      else res.once("drain", then);
    };
    const finish = () => {
      if (cutAt !== undefined) {
        // Let the bytes reach the wire, then drop the connection without ending the body.
        const sock = res.socket;
        sock?.end();
        setTimeout(() => sock?.destroy(), 5);
        return;
      }
      if (over && !over.declared) {
        // The extra bytes go out on the raw socket, after a body whose Content-Length is right.
        const junk = new Uint8Array(extra).fill(0xa5);
        const sock = res.socket;
        res.end(() => sock?.end(junk));
        entry.bytes += extra;
        stats.bytesSent += extra;
        return;
      }
      if (over?.declared) {
        const junk = new Uint8Array(extra).fill(0xa5);
        entry.bytes += extra;
        stats.bytesSent += extra;
        res.end(junk);
        return;
      }
      res.end();
    };
    let pos = start;
    const dripFrom = drip ? start + (drip.afterBytes ?? 0) : Infinity;
    const step = () => {
      if (res.destroyed || res.socket?.destroyed) return;
      if (pos >= stopAt) return finish();
      if (pos >= dripFrom) {
        const n = Math.min(drip!.bytesPerTick ?? 1, stopAt - pos);
        later(() => {
          if (res.destroyed) return;
          const chunk = body.subarray(pos, pos + n);
          pos += n;
          options.clock?.activity();
          send(chunk, step);
        }, drip!.intervalMs ?? 1000);
        return;
      }
      const n = Math.min(CHUNK, stopAt - pos, dripFrom - pos);
      const chunk = body.subarray(pos, pos + n);
      pos += n;
      send(chunk, step);
    };
    step();
  }

  const server: Server = createServer({ cert: options.cert, key: options.key }, handle);
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    // A fleet's devices connect at once: a deeper accept queue than Node's default 511 (the
    // kernel caps it at net.core.somaxconn), so a burst is not answered with resets.
    server.listen({ port: options.port ?? 0, host: options.host ?? "127.0.0.1", backlog: 4096 }, () => {
      server.off("error", fail);
      ok();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  let closed = false;
  return {
    url: `https://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    stats,
    setFault,
    setRoute(path, body) {
      if (body === null) routes.delete(path);
      else putRoute(path, body);
    },
    resetStats() {
      stats.requests = 0;
      stats.bytesSent = 0;
      stats.log.length = 0;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const id of timers) options.clock?.clearTimeout(id);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
