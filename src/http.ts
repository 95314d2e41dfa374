/// <reference path="./types/moddable.d.ts" preserve="true" />
/*
 * HttpPort on the classic "http" client over "securesocket" (modules/network/http/http.js,
 * modules/crypt/securesocket/securesocket.js). The only trust anchor is the pinned CA given here
 * (securesocket's "certificate" option registers it, and no ca*.der resource is built in), unless
 * the request names its own (HttpRequestOptions.ca: PEM, one or more certificates): then every
 * certificate of it in its validity period is an anchor and the pinned CA is not, for that request
 * (src/tls-chain.ts trustAnchors, holdChainToItsSignatures).
 * Messages (http.js): 1 status, 2 header, 3 headersComplete, 4 responseFragment(count),
 * 5 responseComplete, -2 error. Always "Connection: close"; no redirects; TLS 1.2 at most.
 */
import { Request } from "http";
import Timer from "timer";
import type { HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "../modules/ports";
import { OtaError, codeOf } from "../modules/errors";
import { parseHttpsUrl, type HttpsTarget } from "./url";
import { drainFragment } from "./http-drain";
import { CheckedSecureSocket, trustAnchors, type CheckedSecureOptions } from "./tls-chain";

export interface EspHttpOptions {
  /** DER of the CA (or server certificate) to trust; nothing else is trusted. */
  ca: ArrayBuffer;
}

const STATUS = 1, HEADER = 2, HEADERS_COMPLETE = 3, FRAGMENT = 4, COMPLETE = 5, ERROR = -2;
const MAX_HEAD_BYTES = 8192;
const SOCKET_CONNECTED = 1;
/**
 * TLS records of 4 KB, asked for in the ClientHello (RFC 6066 max_fragment_length, which
 * ssl_handshake.js sends for this option): securesocket holds a whole record, so 16 KB records
 * cost about 12 KB more RAM during a download (measured, moddable-host --census). A server that
 * does not know the extension ignores it (RFC 6066) and sends 16 KB records, read as before; not
 * tried here, where every server is OpenSSL's (test/moddable/tls-records.test.ts checks the
 * ClientHello and the server's record sizes).
 */
const MAX_FRAGMENT = 4096;

/**
 * SecureSocket that tells its dictionary when TCP connected. http.js reports a refused connection
 * and a failed TLS handshake alike (error -2 before any status; securesocket.js swallows the TLS
 * exception). `tls` says which: "tcp" once TCP connected, "secure" once the handshake is done
 * (securesocket.js deletes `handshaking`), so an error in between is HTTP_TLS.
 */
class WatchedSecureSocket extends CheckedSecureSocket {
  constructor(dict: { onTls?: (stage: "tcp" | "secure") => void; secure?: CheckedSecureOptions; [k: string]: unknown }) {
    super(dict);
    const sock = this.sock as unknown as { callback: (message: number, value?: unknown) => void };
    const inner = sock.callback;
    sock.callback = (message, value) => {
      if (message === SOCKET_CONNECTED) dict.onTls?.("tcp");
      inner.call(sock, message, value);
      if (!(this as unknown as { handshaking?: boolean }).handshaking) dict.onTls?.("secure");
    };
  }
}

export class EspHttp implements HttpPort {
  readonly #ca: ArrayBuffer;
  constructor(options: EspHttpOptions) {
    this.#ca = options.ca;
  }

  /**
   * A non-https URL is refused before any socket exists: onError HTTP_INSECURE_URL (a malformed
   * one HTTP_CONNECT), delivered asynchronously like every other outcome, as host-sim/engines/ports/http.ts does.
   */
  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest {
    let target: HttpsTarget;
    try {
      target = parseHttpsUrl(options.url);
    } catch (e) {
      let refused = false;
      Timer.set(() => {
        if (refused) return;
        refused = true;
        handler.onError(e instanceof OtaError ? e.code : "HTTP_CONNECT", `refused ${options.url}: ${String(e)}`);
      });
      return { close: () => void (refused = true) };
    }
    const method = options.method ?? "GET";
    const headers: string[] = [];
    for (const [name, value] of options.headers ?? []) headers.push(name, value);
    let closed = false, status = 0, headersDone = false, headBytes = 0;
    let tls: "none" | "tcp" | "secure" = "none";
    // A capped download leaves bytes of a fragment unread (modules/control.ts); they are read
    // from http.js when the handler pulls, and the body completes only after that.
    let unread = 0, completePending = false;
    const drain = () => {
      if (closed || !req) return;
      unread = drainFragment(unread, (n) => req!.read(ArrayBuffer, n), handler, () => closed);
      if (unread === 0 && completePending && !closed) { closed = true; handler.onComplete(); }
    };
    let req: Request | undefined;
    const fail = (code: string, detail: string) => {
      if (closed) return;
      closed = true;
      req?.close();
      handler.onError(code, detail);
    };
    const dictionary = {
      host: target.host, port: target.port, path: target.path, method, headers,
      Socket: WatchedSecureSocket,
      onTls: (stage: "tcp" | "secure") => void (tls = stage),
    };
    const pinned = this.#ca;
    const callback = (message: number, value1?: unknown, value2?: unknown) => {
      if (closed) return;
      try {
        switch (message) {
          case STATUS: status = Number(value1); handler.onStatus(status); break;
          case HEADER:
            // http.js gathers a header line whole, however long, before it calls back: the
            // response head is bounded here, as ESP-IDF's 8 KB header buffer and the host
            // bindings bound it (a longer head is HTTP_PROTOCOL on every runtime).
            headBytes += String(value1).length + String(value2).length + 4;
            if (headBytes > MAX_HEAD_BYTES) fail("HTTP_PROTOCOL", `response head longer than ${MAX_HEAD_BYTES} bytes`);
            else handler.onHeader(String(value1), String(value2));
            break;
          case HEADERS_COMPLETE: headersDone = true; handler.onHeadersComplete(); break;
          case FRAGMENT: unread += Number(value1); drain(); break;
          case COMPLETE: completePending = true; drain(); break;
          case ERROR:
            // http.js waits for a HEAD body that never comes; the server's close ends it.
            if (method === "HEAD" && headersDone) { closed = true; handler.onComplete(); }
            else if (status) fail("HTTP_CLOSED", "connection closed mid-body");
            else if (tls === "tcp") fail("HTTP_TLS", "TLS handshake failed (certificate not from the pinned CA, host name, date or cipher)");
            else fail("HTTP_CONNECT", tls === "secure" ? "closed before the status line" : "connect failed");
            break;
        }
      } catch (e) {
        fail(codeOf(e), String(e));
      }
    };
    // The request starts from a timer, on a fresh XS stack: new Request() builds the TLS session
    // and parses the pinned CA (ssl_cert.js -> BER.decode), about 160 slots deep, and the agent
    // calls request() about 350 slots deep (a timer, its loop, check, fetch, the redirect
    // wrapper, all async); together they overflowed a 512-slot stack (moddable-host/README.md).
    Timer.set(() => {
      if (closed) return;
      try {
        // The request's own anchors (a root's, modules/roles.ts anchoredHttp; a redirect host's CA,
        // modules/redirect.ts) replace the pinned CA for this request only. Parsed here, on the
        // timer's fresh stack, as the certificates are decoded (BER) like the pinned one.
        const anchors = options.ca === undefined ? [pinned] : trustAnchors(options.ca);
        if (anchors.length === 0) throw new Error("no trust anchor of the request in its validity period (expired, not yet valid or not a certificate)");
        const secure: CheckedSecureOptions = { certificate: anchors[0], anchors, protocolVersion: 0x303, serverName: target.host, tls_max_fragment_length: MAX_FRAGMENT };
        const withAnchors = { ...dictionary, secure };
        req = new Request(withAnchors);
        req.callback = callback;
      } catch (e) {
        // securesocket's constructor throws for TLS setup (e.g. the pinned certificate is not yet
        // valid because SNTP has not set the clock); reported as a socket error is.
        fail("HTTP_TLS", String(e));
      }
    });
    return {
      close() {
        if (closed) return;
        closed = true;
        req?.close();
      },
      pull() {
        try {
          drain();
        } catch (e) {
          fail(codeOf(e), String(e));
        }
      },
    };
  }
}
