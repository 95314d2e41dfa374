/*
 * Small HTTPS GETs (the manifest envelope) into memory, bounded, and URL resolution for a
 * manifest's image URL relative to the manifest's own.
 */
import type { Ports } from "./ports";
import { OtaError, type ErrorCode } from "./errors";
import { concatBytes } from "./bytes";
import { constant } from "./constant";

function statusError(status: number): OtaError {
  const code: ErrorCode = status === 404 ? "HTTP_NOT_FOUND" : status >= 500 ? "HTTP_SERVER_ERROR" : status >= 400 ? "HTTP_CLIENT_ERROR" : "HTTP_STATUS";
  return new OtaError(code, `status ${status}`);
}

/** Port error codes reported as they are; any other becomes HTTP_CLOSED. */
const PASSED: readonly string[] = constant(["HTTP_TLS", "HTTP_INSECURE_URL", "HTTP_CONNECT", "HTTP_PROTOCOL", "HTTP_REDIRECT", "HTTP_REDIRECT_LOOP"]);

/**
 * GET `url` (https: only) and return the body, at most `limit` bytes.
 * Throws HTTP_INSECURE_URL, HTTP_TLS, HTTP_CONNECT, HTTP_CLOSED, HTTP_TIMEOUT (no data for `timeoutMs`),
 * HTTP_NOT_FOUND / HTTP_CLIENT_ERROR / HTTP_SERVER_ERROR / HTTP_STATUS, MANIFEST_TOO_LARGE,
 * HTTP_ENCODING (a Content-Encoding other than identity), HTTP_PROTOCOL (a repeated Content-Length,
 * a malformed response). A chunked or close-delimited body is read to its end.
 */
export function fetchSmall(ports: Pick<Ports, "http" | "clock">, url: string, limit: number, timeoutMs: number): Promise<Uint8Array> {
  if (!/^https:\/\//i.test(url)) return Promise.reject(new OtaError("HTTP_INSECURE_URL", url));
  return new Promise<Uint8Array>((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let total = 0;
    let status = 0;
    let lengths = 0;
    let encoding: string | undefined;
    let settled = false;
    let timer = 0;
    let req: { close(): void } | undefined;
    const end = (e: OtaError | undefined) => {
      if (settled) return;
      settled = true;
      ports.clock.clearTimeout(timer);
      if (req) req.close();
      if (e) reject(e);
      else resolve(concatBytes(parts));
    };
    const arm = () => {
      ports.clock.clearTimeout(timer);
      timer = ports.clock.setTimeout(() => end(new OtaError("HTTP_TIMEOUT", `no data for ${timeoutMs} ms`)), timeoutMs);
    };
    arm();
    req = ports.http.request({ url }, {
      onStatus: (s) => { status = s; },
      onHeader: (name, value) => {
        if (name === "content-length") lengths++;
        else if (name === "content-encoding") encoding = value.trim().toLowerCase();
      },
      onHeadersComplete: () => {
        if (status !== 200) end(statusError(status));
        else if (lengths > 1) end(new OtaError("HTTP_PROTOCOL", `${lengths} Content-Length headers`));
        else if (encoding !== undefined && encoding !== "identity") end(new OtaError("HTTP_ENCODING", `Content-Encoding: ${encoding}`));
      },
      onData: (_available, read) => {
        arm();
        for (;;) {
          const chunk = new Uint8Array(512);
          const n = read(chunk);
          if (n <= 0) break;
          total += n;
          if (total > limit) return end(new OtaError("MANIFEST_TOO_LARGE", `more than ${limit} bytes`));
          parts.push(chunk.subarray(0, n));
        }
      },
      onComplete: () => end(undefined),
      onError: (code, detail) => end(new OtaError(PASSED.indexOf(code) >= 0 ? (code as ErrorCode) : "HTTP_CLOSED", detail)),
    });
    if (settled) req.close();
  });
}

/** `ref` resolved against `base` (absolute, origin-relative "/x", or relative to base's directory). */
export function resolveUrl(base: string, ref: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref)) return ref;
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/]+)(\/[^?#]*)?/i.exec(base);
  if (!m) return ref;
  if (ref.startsWith("//")) return m[1]!.slice(0, m[1]!.indexOf(":")) + ":" + ref;
  if (ref.startsWith("/")) return m[1] + ref;
  const path = m[2] ?? "/";
  return m[1] + path.slice(0, path.lastIndexOf("/") + 1) + ref;
}
