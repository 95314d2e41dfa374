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
    const r = new Redirection(this.inner, this.config, options, handler);
    r.go(options.url);
    return r;
  }
}

/**
 * One request through its hops, and what the caller holds (close, pull). Classes, not closures:
 * on the device their methods stay in flash (the agent is preloaded), where each request made a
 * dozen closures in RAM.
 */
class Redirection implements HttpRequest {
  readonly visited: string[];
  current: HttpRequest | undefined;
  closed = false;
  hops = 0;

  constructor(readonly inner: HttpPort, readonly config: RedirectConfig, readonly options: HttpRequestOptions, readonly handler: HttpHandler) {
    this.visited = [canonical(options.url)];
  }

  end(code: string, detail: string): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onError(code, detail);
  }

  go(url: string): void {
    const hop: HttpRequestOptions = { ...this.options, url };
    const a = this.hops > 0 ? authority(url) : undefined;
    const ca = a ? (this.config.hostCas[a.hostPort] ?? this.config.hostCas[a.host]) : undefined;
    if (ca !== undefined) hop.ca = ca;
    else delete hop.ca;
    const h = new Hop(this, url);
    h.req = this.inner.request(hop, h);
    this.current = h.req;
  }

  close(): void {
    this.closed = true;
    this.current?.close();
  }

  // The bandwidth cap (modules/control.ts) pulls unread bytes of the final hop's body.
  pull(): void {
    if (!this.closed && this.current && this.current.pull) this.current.pull();
  }
}

/** One hop's handler: a redirect is followed, anything else goes to the caller's handler. */
class Hop implements HttpHandler {
  redirect = false;
  status = 0;
  location: string | undefined;
  req: HttpRequest | undefined;

  constructor(readonly r: Redirection, readonly url: string) {}

  onStatus(s: number): void {
    if (this.r.closed) return;
    this.status = s;
    this.redirect = REDIRECTS.indexOf(s) >= 0;
    if (!this.redirect) this.r.handler.onStatus(s);
  }

  onHeader(name: string, value: string): void {
    if (this.r.closed) return;
    if (!this.redirect) this.r.handler.onHeader(name, value);
    else if (name === "location") this.location = value.trim();
  }

  onHeadersComplete(): void {
    const { r, url, location, status } = this;
    if (r.closed) return;
    if (!this.redirect) return r.handler.onHeadersComplete();
    this.req?.close();
    if (location === undefined || location === "") return r.end("HTTP_REDIRECT", `status ${status} without a Location`);
    const next = resolveUrl(url, location);
    if (!/^https:\/\//i.test(next)) return r.end("HTTP_INSECURE_URL", `redirect to ${next}: https: only`);
    if (r.visited.indexOf(canonical(next)) >= 0) return r.end("HTTP_REDIRECT_LOOP", `${url} -> ${next} (seen after ${r.hops} hops)`);
    if (++r.hops > r.config.max) return r.end("HTTP_REDIRECT", `more than ${r.config.max} redirects (last to ${next})`);
    r.visited.push(canonical(next));
    r.go(next);
  }

  onData(available: number, read: (target: Uint8Array) => number): void {
    if (!this.r.closed && !this.redirect) this.r.handler.onData(available, read);
  }

  onComplete(): void {
    const r = this.r;
    if (r.closed || this.redirect) return;
    r.closed = true;
    r.handler.onComplete();
  }

  onError(code: string, detail: string): void {
    const r = this.r;
    r.end(code, r.hops > 0 ? `${detail} (after ${r.hops} redirects, at ${this.url})` : detail);
  }
}
