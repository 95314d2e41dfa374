/*
 * Redirects, once for every binding: an HttpPort over another that follows 301/302/303/307/308
 * (S3 pre-signed URLs, GitHub release assets, CDNs), as esp_http_client does. Moddable's http
 * follows none, so the rule lives here and the bindings stay thin.
 *
 * - At most `max` hops (default 5); more is HTTP_REDIRECT, a URL seen before is HTTP_REDIRECT_LOOP.
 * - https: only on every hop: an http: (or missing) Location is refused here, before any socket.
 * - Every hop trusts the pinned CA alone, unless `hostCas` names an extra CA for the hop's host
 *   ("host" or "host:port"); the original host is always the pinned CA's.
 * - The request's headers (Range, If-Range) go to every hop; the caller sees only the final
 *   response, so its Range/ETag/size checks apply to the bytes it gets. Each new request starts
 *   at the ORIGINAL URL again (the downloader never learns the target): a pre-signed target
 *   that expired is simply re-issued.
 */
import type { HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "./ports";
import { resolveUrl } from "./fetch";
import { constant } from "./constant";

export interface RedirectConfig {
  /** Hops followed per request (0: none, a redirect is HTTP_REDIRECT). */
  max: number;
  /** Extra CA (PEM) per redirect host, keyed "host" or "host:port". */
  hostCas: Record<string, string>;
}

export const REDIRECT_DEFAULTS: RedirectConfig = constant({ max: 5, hostCas: {} });

const REDIRECTS: readonly number[] = constant([301, 302, 303, 307, 308]);

/** "host:port" and "host" of an https: URL (lower case), or undefined. */
function authority(url: string): { hostPort: string; host: string } | undefined {
  const m = /^https:\/\/([^/?#]+)/i.exec(url);
  if (!m) return undefined;
  const hostPort = m[1]!.toLowerCase();
  const host = hostPort.replace(/:\d+$/, "");
  return { hostPort, host };
}

/** The URL without its fragment, for loop detection. */
const canonical = (url: string) => url.replace(/#.*$/, "");

export class RedirectingHttp implements HttpPort {
  constructor(private readonly inner: HttpPort, private readonly config: RedirectConfig = REDIRECT_DEFAULTS) {}

  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest {
    const { inner, config } = this;
    const visited: string[] = [canonical(options.url)];
    let current: HttpRequest | undefined;
    let closed = false;
    let hops = 0;
    const end = (code: string, detail: string) => {
      if (closed) return;
      closed = true;
      handler.onError(code, detail);
    };
    const go = (url: string) => {
      let redirect = false;
      let status = 0;
      let location: string | undefined;
      const hop: HttpRequestOptions = { ...options, url };
      const a = hops > 0 ? authority(url) : undefined;
      const ca = a ? (config.hostCas[a.hostPort] ?? config.hostCas[a.host]) : undefined;
      if (ca !== undefined) hop.ca = ca;
      else delete hop.ca;
      const req = inner.request(hop, {
        onStatus: (s) => {
          if (closed) return;
          status = s;
          redirect = REDIRECTS.indexOf(s) >= 0;
          if (!redirect) handler.onStatus(s);
        },
        onHeader: (name, value) => {
          if (closed) return;
          if (!redirect) handler.onHeader(name, value);
          else if (name === "location") location = value.trim();
        },
        onHeadersComplete: () => {
          if (closed) return;
          if (!redirect) return handler.onHeadersComplete();
          req.close();
          if (location === undefined || location === "") return end("HTTP_REDIRECT", `status ${status} without a Location`);
          const next = resolveUrl(url, location);
          if (!/^https:\/\//i.test(next)) return end("HTTP_INSECURE_URL", `redirect to ${next}: https: only`);
          if (visited.indexOf(canonical(next)) >= 0) return end("HTTP_REDIRECT_LOOP", `${url} -> ${next} (seen after ${hops} hops)`);
          if (++hops > config.max) return end("HTTP_REDIRECT", `more than ${config.max} redirects (last to ${next})`);
          visited.push(canonical(next));
          go(next);
        },
        onData: (available, read) => {
          if (!closed && !redirect) handler.onData(available, read);
        },
        onComplete: () => {
          if (closed || redirect) return;
          closed = true;
          handler.onComplete();
        },
        onError: (code, detail) => end(code, hops > 0 ? `${detail} (after ${hops} redirects, at ${url})` : detail),
      });
      current = req;
    };
    go(options.url);
    return {
      close() {
        closed = true;
        current?.close();
      },
      // The bandwidth cap (modules/control.ts) pulls unread bytes of the final hop's body.
      pull() {
        if (!closed && current && current.pull) current.pull();
      },
    };
  }
}
