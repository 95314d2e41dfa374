/*
 * Redirect scenarios (modules/redirect.ts) over the byte-controlled host: the first host of
 * the manifest or image URL answers with a redirect to the lab's update host (same CA), to a
 * host of another CA, to itself, or to http:. Run with the rest of host-sim/lab/scenarios.ts on
 * both engines.
 */
import type { Scenario } from "./scenario";
import { redirect, type WireScript } from "./wire-host";

const V11 = { version: "1.1.0", secureVersion: 1 };

/** Redirect every request to the same path on `to` (a key of the host's vars). */
const to = (where: "lab" | "other", status = 302): WireScript => (req) => redirect(status, `${req.vars[where]}${req.path}?X-Amz-Signature=${req.n}`);

/** `hops` redirects within the wire host (?hop=1..), then to the lab host. */
const chain = (hops: number): WireScript => (req) => {
  const k = Number(/hop=(\d+)/.exec(req.query)?.[1] ?? 0);
  return k + 1 < hops ? redirect(307, `${req.path}?hop=${k + 1}`) : redirect(308, `${req.vars.lab}${req.path}`);
};

export const redirectScenarios: Scenario[] = [
  { name: "redirect-image", summary: "the image URL answers 302 to a pre-signed URL on another host (same CA)", releases: [{ image: V11 }], wire: { image: to("lab") }, expect: { version: "1.1.0", final: "committed" } },
  { name: "redirect-manifest", summary: "the manifest URL answers 301 to another host", releases: [{ image: V11 }], wire: { manifest: to("lab", 301) }, expect: { version: "1.1.0", final: "committed" } },
  { name: "redirect-chain-5", summary: "five redirects (307 and 308), the default limit", releases: [{ image: V11 }], wire: { image: chain(5) }, expect: { version: "1.1.0", final: "committed" } },
  { name: "redirect-chain-6", summary: "six redirects, one past the limit", releases: [{ image: V11 }], wire: { image: chain(6) }, expect: { version: "1.0.0", final: "failed", code: "HTTP_REDIRECT", app0Untouched: true } },
  { name: "redirect-loop", summary: "a redirect back to a URL already visited", releases: [{ image: V11 }], wire: { image: (req) => redirect(302, req.query ? req.path : `${req.path}?again`) }, expect: { version: "1.0.0", final: "failed", code: "HTTP_REDIRECT_LOOP", app0Untouched: true } },
  { name: "redirect-http", summary: "a redirect to an http: URL, refused before any socket", releases: [{ image: V11 }], wire: { image: () => redirect(302, "http://127.0.0.1:9/fw.bin") }, expect: { version: "1.0.0", final: "failed", code: "HTTP_INSECURE_URL", app0Untouched: true } },
  { name: "redirect-no-location", summary: "a 302 without Location", releases: [{ image: V11 }], wire: { image: () => redirect(302, undefined) }, expect: { version: "1.0.0", final: "failed", code: "HTTP_REDIRECT", app0Untouched: true } },
  { name: "redirect-resume", summary: "redirected, cut at 20 000: the resume asks the ORIGINAL URL again, with Range", releases: [{ image: V11 }], wire: { image: to("lab") }, faults: { image: [{ kind: "cut-at", at: 20_000, times: 1 }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "redirect-other-ca", summary: "a redirect to a host the pinned CA does not cover", releases: [{ image: V11 }], wire: { image: to("other") }, expect: { version: "1.0.0", final: "failed", code: "HTTP_TLS", app0Untouched: true } },
  { name: "redirect-extra-ca", summary: "the same, with the configuration naming that host's CA", releases: [{ image: V11 }], wire: { image: to("other") }, trustOtherForRedirects: true, expect: { version: "1.1.0", final: "committed" } },
];
