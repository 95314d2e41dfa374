/*
 * Fetch a small document (a manifest envelope an announcement points at) over the HttpPort:
 * https: only, a size cap, and a stall timeout on the ClockPort.
 */
import type { ClockPort, HttpPort, HttpRequest } from "./ports";
import { OtaError, isErrorCode } from "./errors";

/**
 * GET `url` into memory. Rejects with OtaError HTTP_INSECURE_URL, HTTP_NOT_FOUND,
 * HTTP_CLIENT_ERROR, HTTP_SERVER_ERROR, HTTP_STATUS, HTTP_TIMEOUT, HTTP_TOO_LONG, MANIFEST_TOO_LARGE,
 * or the transport's code (HTTP_CONNECT, HTTP_TLS...).
 */
export function fetchSmall(http: HttpPort, clock: ClockPort, url: string, maxBytes: number, stallMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (!/^https:\/\//i.test(url)) {
      reject(new OtaError("HTTP_INSECURE_URL", url));
      return;
    }
    const body = new Uint8Array(maxBytes);
    let length = 0;
    let status = 0;
    let done = false;
    let timer = 0;
    let req: HttpRequest | undefined;
    const finish = (e: OtaError | null) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      req?.close();
      if (e) reject(e);
      else resolve(body.slice(0, length));
    };
    const arm = () => {
      clock.clearTimeout(timer);
      timer = clock.setTimeout(() => finish(new OtaError("HTTP_TIMEOUT", `${url}: no data for ${stallMs} ms`)), stallMs);
    };
    req = http.request({ url }, {
      onStatus(s) {
        status = s;
        arm();
      },
      onHeader() {},
      onHeadersComplete() {
        if (status === 200) return;
        const code = status === 404 ? "HTTP_NOT_FOUND" : status >= 500 ? "HTTP_SERVER_ERROR" : status >= 400 ? "HTTP_CLIENT_ERROR" : "HTTP_STATUS";
        finish(new OtaError(code, `${url}: ${status}`));
      },
      onData(available, read) {
        if (done) return;
        arm();
        if (length + available > maxBytes) {
          finish(new OtaError("MANIFEST_TOO_LARGE", `${url}: more than ${maxBytes} bytes`));
          return;
        }
        length += read(body.subarray(length));
      },
      onComplete() {
        finish(null);
      },
      onError(code, detail) {
        finish(new OtaError(isErrorCode(code) ? code : "HTTP_CONNECT", detail));
      },
    });
    if (done) req.close();
    else arm();
  });
}
