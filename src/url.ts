/*
 * The piece of URL parsing the HTTP binding needs, without a URL class (XS on the chip has none
 * unless the "url" module is built in). Pure: tested under Node in test/device.
 */
import { OtaError } from "../modules/errors";

export interface HttpsTarget {
  host: string;
  port: number;
  /** Path and query, at least "/". */
  path: string;
}

/**
 * Split an https: URL. Throws OtaError HTTP_INSECURE_URL for any other scheme (before any socket
 * exists), TypeError for a malformed URL (no host, bad port, user info, fragment-only...).
 */
export function parseHttpsUrl(url: string): HttpsTarget {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
  if (!scheme) throw new TypeError(`not an absolute URL: ${url}`);
  if (scheme[1]!.toLowerCase() !== "https") throw new OtaError("HTTP_INSECURE_URL", url);
  const rest = url.slice(scheme[0].length).replace(/#.*$/, "");
  const slash = rest.search(/[/?]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  let path = slash < 0 ? "/" : rest.slice(slash);
  if (path.startsWith("?")) path = "/" + path;
  if (authority.includes("@")) throw new TypeError("user info in URL is not supported");
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) throw new TypeError(`bad host in URL: ${url}`);
  const port = m[2] === undefined ? 443 : Number(m[2]);
  if (port < 1 || port > 65535) throw new TypeError(`bad port in URL: ${url}`);
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  return { host: host.toLowerCase(), port, path };
}
