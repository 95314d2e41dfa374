/*
 * modules/redirect.ts over the real Node HTTP port and the byte-controlled host: which hops
 * open a socket, which CA each hop trusts, and the configuration that names extra CAs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../backend/clock";
import { driveDevice } from "../../host-sim/chip/device";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { startWireHost, redirect, honest, type WireHost, type WireScript } from "../../host-sim/lab/wire-host";
import { makeCa, makeServerCert, type CaBundle } from "../../backend/release/pki";
import { RedirectingHttp, type RedirectConfig } from "../../modules/redirect";
import { fetchSmall, resolveUrl } from "../../modules/fetch";
import { parseConfig } from "../../modules/config";
import type { HttpPort, HttpRequestOptions } from "../../modules/ports";
import type { OtaError } from "../../modules/errors";

let ca: CaBundle;
let other: CaBundle;
let a: WireHost;
let b: WireHost;
const clock = new VirtualClock();
const body = new TextEncoder().encode("{\"payload\":\"the manifest\"}");
const ok: WireScript = (req, r) => { const h = honest(req, r); return [{ write: h.head }, { write: h.body }, { end: "fin" }]; };
beforeAll(async () => {
  ca = await makeCa();
  other = await makeCa(undefined, "a CDN's CA");
  const ca1 = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
  const ca2 = await makeServerCert(other, { hosts: ["127.0.0.1"] });
  a = await startWireHost({ cert: ca1.certPem, key: ca1.keyPem });
  b = await startWireHost({ cert: ca2.certPem, key: ca2.keyPem });
});
afterAll(async () => { await a.close(); await b.close(); });

/** The inner port's requests (url, ca given) are recorded: a refused hop never reaches it. */
async function get(url: string, config: Partial<RedirectConfig> = {}) {
  const node = new NodeHttp({ ca: ca.caCertPem, clock });
  const seen: HttpRequestOptions[] = [];
  const inner: HttpPort = { request: (o, h) => { seen.push(o); return node.request(o, h); } };
  const http = new RedirectingHttp(inner, { max: 5, hostCas: {}, ...config });
  let out: Uint8Array | undefined;
  let error: OtaError | undefined;
  let done = false;
  fetchSmall({ http, clock }, url, 4096, 10_000).then((x) => { out = x; done = true; }, (e: OtaError) => { error = e; done = true; });
  await driveDevice(clock, () => done, { maxRealMs: 20_000, quietMs: 50 }, () => node.waiting > 0);
  return { text: out && new TextDecoder().decode(out), code: error?.code, seen };
}

describe("redirects", () => {
  it("follows a 302 to another host; the pinned CA is the only trust unless the configuration names one", async () => {
    a.route("/r1", body, (req) => redirect(302, `${b.url}/t1`));
    b.route("/t1", body, ok);
    const pinned = await get(`${a.url}/r1`);
    expect(pinned.code).toBe("HTTP_TLS");
    expect(pinned.seen.map((o) => o.ca)).toEqual([undefined, undefined]);
    const named = await get(`${a.url}/r1`, { hostCas: { [new URL(b.url).host]: other.caCertPem } });
    expect(named.text).toBe(new TextDecoder().decode(body));
    expect(named.seen.map((o) => o.ca === other.caCertPem)).toEqual([false, true]);
  });

  it("an http: Location is refused before any socket opens", async () => {
    a.route("/r2", body, () => redirect(301, "http://127.0.0.1:9/x"));
    const r = await get(`${a.url}/r2`);
    expect(r.code).toBe("HTTP_INSECURE_URL");
    expect(r.seen.map((o) => o.url)).toEqual([`${a.url}/r2`]);
  });

  it("a loop and a chain past the limit are named; max 0 follows none", async () => {
    a.route("/loop", body, (req) => redirect(303, req.query ? "/loop" : "/loop?x"));
    expect((await get(`${a.url}/loop`)).code).toBe("HTTP_REDIRECT_LOOP");
    a.route("/hop", body, (req) => redirect(307, `/hop?${Number(req.query || 0) + 1}`));
    const far = await get(`${a.url}/hop`, { max: 3 });
    expect(far.code).toBe("HTTP_REDIRECT");
    expect(far.seen.length).toBe(4);
    a.route("/once", body, () => redirect(302, "/t"));
    expect((await get(`${a.url}/once`, { max: 0 })).code).toBe("HTTP_REDIRECT");
  });

  it("resolves absolute, scheme-relative, origin-relative and relative Locations", () => {
    expect(resolveUrl("https://h:1/a/b?q", "https://x/y")).toBe("https://x/y");
    expect(resolveUrl("https://h:1/a/b?q", "//cdn:2/z")).toBe("https://cdn:2/z");
    expect(resolveUrl("https://h:1/a/b?q", "/z")).toBe("https://h:1/z");
    expect(resolveUrl("https://h:1/a/b?q", "c")).toBe("https://h:1/a/c");
  });

  it("the configuration: redirects.max 0..20, hostCas PEM certificates", () => {
    const base = { product: "p", manifestUrl: "https://h/r.json", trustedKeys: [{ type: "ecdsa-p256", spki: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + "A".repeat(86) + "==" }] };
    expect(() => parseConfig({ ...base, redirects: { max: 21 } })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(() => parseConfig({ ...base, redirects: { hostCas: { cdn: "not a pem" } } })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
  });
});
