/*
 * A byte-controlled HTTPS host for tests: TLS over a raw socket (node:tls, not node:http), where
 * a script says exactly which bytes leave in which write, and when and how the connection ends
 * (FIN, reset, half-close, or held open). It is how other hosts speak (a Python http.server
 * behind TLS, a CDN, an S3-like store), not how ours does: our own update host cannot send
 * extra bytes in the same write as the body, split a status line, or mangle headers.
 *
 * Each write is its own TLS record and, after a short real pause (`gapMs`, default 2 ms, well
 * under the drive's quiet window so virtual time never jumps mid-response), reaches the
 * client's parser in its own read.
 */
import { createServer, type Server, type TLSSocket } from "node:tls";
import { createHash } from "node:crypto";
import type { Socket } from "node:net";

export type WireStep =
  /** One socket write (a TLS record). */
  | { write: string | Uint8Array }
  /** Each byte of this in its own write. */
  | { bytewise: string | Uint8Array }
 /**
   * Wait this many real ms (keep it under the drive's quiet window, 100 ms). Before a reset:
   * a TCP RST makes the client's kernel drop what the client has not read yet.
   */
  | { pause: number }
  /** End: "fin" (close_notify + FIN, then close), "reset" (TCP RST), "half-close" (FIN, socket stays open for reading), "hold" (nothing more). */
  | { end: "fin" | "reset" | "half-close" | "hold" };

export interface WireRequest {
  method: string;
  /** The path without its query. */
  path: string;
  /** The query string without "?", or "". */
  query: string;
  /** The host's `vars` when the request came (other hosts' URLs, for redirect scripts). */
  vars: Readonly<Record<string, string>>;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** This path's request number, from 0. */
  n: number;
}

/** What a route answers a request with. `body` and `etag` are the route's resource. */
export type WireScript = (req: WireRequest, resource: { body: Uint8Array; etag: string }) => WireStep[];

export interface WireHost {
  url: string;
  port: number;
  /** Requests seen, in order. */
  readonly log: WireRequest[];
  /** Handed to scripts as `req.vars`. */
  vars: Record<string, string>;
  route(path: string, body: Uint8Array, script: WireScript): void;
  /** Scripts inside a `pause` step now: a virtual clock should not jump meanwhile (the host is not idle). */
  readonly pausing: number;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const bytes = (b: string | Uint8Array) => (typeof b === "string" ? enc.encode(b) : b);

/** The head of a response: status line, headers (each [name, value], in order, repeats allowed), blank line. */
export function head(status: number, headers: ReadonlyArray<readonly [string, string | number]>, reason = "OK"): string {
  return `HTTP/1.1 ${status} ${reason}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
}

/** A chunked body: the bytes in chunks of `size`, then the last chunk. */
export function chunked(body: Uint8Array, size: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let o = 0; o < body.length; o += size) {
    const c = body.subarray(o, o + size);
    parts.push(enc.encode(`${c.length.toString(16)}\r\n`), c, enc.encode("\r\n"));
  }
  parts.push(enc.encode("0\r\n\r\n"));
  return Buffer.concat(parts);
}

/** The honest answer a script usually starts from: 200 (or 206 for `bytes=N-`) with Content-Length and ETag. */
export function honest(req: WireRequest, r: { body: Uint8Array; etag: string }): { head: string; body: Uint8Array } {
  const m = /^bytes=(\d+)-$/.exec(req.headers["range"] ?? "");
  const from = m ? Number(m[1]) : 0;
  if (m && (!req.headers["if-range"] || req.headers["if-range"] === r.etag) && from < r.body.length) {
    const body = r.body.subarray(from);
    return { head: head(206, [["Content-Length", body.length], ["Content-Range", `bytes ${from}-${r.body.length - 1}/${r.body.length}`], ["ETag", r.etag], ["Connection", "close"]], "Partial Content"), body };
  }
  return { head: head(200, [["Content-Length", r.body.length], ["ETag", r.etag], ["Connection", "close"]]), body: r.body };
}

/**
 * How long a script waits after its last bytes before a TCP reset. A reset makes the peer's kernel
 * drop what it received and its process has not read yet (Linux), so a client slowed by a loaded
 * machine would lose the body and the case would test the wrong thing (40 ms was too short in a
 * loaded CI run). Drive a virtual clock with `pausing` as a block, or the pause lets it jump.
 */
export const BEFORE_RESET_MS = 300;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function parseRequest(text: string, n: (path: string) => number, vars: Record<string, string>): WireRequest {
  const [line, ...rest] = text.split("\r\n");
  const [method = "", target = ""] = (line ?? "").split(" ");
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(":");
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { method, path, query, vars: { ...vars }, headers, n: n(path) };
}

export async function startWireHost(options: { cert: string; key: string; gapMs?: number }): Promise<WireHost> {
  const routes = new Map<string, { body: Uint8Array; etag: string; script: WireScript }>();
  const counts = new Map<string, number>();
  const log: WireRequest[] = [];
  let pausing = 0;
  const sockets = new Set<TLSSocket>();
  // The TCP socket under each TLS one (by client port): a reset is a TCP RST, which a TLSSocket cannot send.
  const raw = new Map<number, Socket>();
  const gap = options.gapMs ?? 2;
  const server: Server = createServer({ cert: options.cert, key: options.key, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const req = parseRequest(text.slice(0, end), (p) => {
        const k = counts.get(p) ?? 0;
        counts.set(p, k + 1);
        return k;
      }, host.vars);
      log.push(req);
      const r = routes.get(req.path);
      const steps: WireStep[] = r ? r.script(req, r) : [{ write: head(404, [["Content-Length", 0], ["Connection", "close"]], "Not Found") }, { end: "fin" }];
      void play(socket, raw.get(socket.remotePort ?? -1), steps, gap, (d) => { pausing += d; });
    };
    socket.on("data", onData);
    socket.on("end", () => { if (!socket.destroyed) socket.end(); });
  });
  server.on("connection", (s: Socket) => {
    const p = s.remotePort ?? -1;
    raw.set(p, s);
    s.on("close", () => raw.delete(p));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const host: WireHost = {
    url: `https://127.0.0.1:${port}`,
    port,
    log,
    vars: {},
    get pausing() { return pausing; },
    route(path, body, script) {
      routes.set(path, { body, etag: `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`, script });
    },
    async close() {
      for (const s of sockets) s.destroy();
      for (const s of raw.values()) s.destroy(); // handshakes the client refused never became TLS sockets
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return host;
}

/** A redirect answer (no body) to `location`. */
export function redirect(status: number, location: string | undefined): WireStep[] {
  const headers: [string, string | number][] = location === undefined ? [] : [["Location", location]];
  return [{ write: head(status, [...headers, ["Content-Length", 0], ["Connection", "close"]], "Redirect") }, { end: "fin" }];
}

async function play(socket: TLSSocket, tcp: Socket | undefined, steps: WireStep[], gap: number, pausingBy: (d: number) => void): Promise<void> {
  const write = (b: Uint8Array) => new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(b, () => resolve());
  });
  for (const step of steps) {
    if (socket.destroyed) return;
    if ("write" in step) {
      await write(bytes(step.write));
      await pause(gap);
    } else if ("pause" in step) {
      pausingBy(1);
      try { await pause(step.pause); } finally { pausingBy(-1); }
    } else if ("bytewise" in step) {
      const b = bytes(step.bytewise);
      for (let i = 0; i < b.length; i++) {
        await write(b.subarray(i, i + 1));
        await pause(gap);
      }
    } else if (step.end === "reset") {
      if (tcp) tcp.resetAndDestroy();
      socket.destroy();
      return;
    } else if (step.end === "fin") {
      socket.end();
      socket.once("finish", () => socket.destroy());
      return;
    } else if (step.end === "half-close") {
      socket.end();
      return;
    } else {
      return;
    }
  }
  socket.end();
}
