import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeCa, makeServerCert, type CaBundle } from "../../backend/release/pki";
import { startUpdateHost, parseRange, type UpdateHost } from "../../backend/update-host";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { get } from "./https-client";

const size = 100_000;
const image = new Uint8Array(size).map((_, i) => (i * 31 + (i >> 8)) & 255);
let ca: CaBundle;
let cert: { certPem: string; keyPem: string };
let host: UpdateHost;
let dir: string;

beforeAll(async () => {
  ca = await makeCa();
  cert = await makeServerCert(ca, { hosts: ["127.0.0.1", "localhost"] });
  dir = mkdtempSync(join(tmpdir(), "xsota-host-"));
  mkdirSync(join(dir, "images"));
  writeFileSync(join(dir, "images", "fw.bin"), image);
  writeFileSync(join(dir, "latest.json"), '{"a":1}');
  host = await startUpdateHost({ dir, cert: cert.certPem, key: cert.keyPem });
});
afterAll(async () => {
  await host.close();
});

const url = (p: string) => host.url + p;
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe("update host: HTTP semantics", () => {
  it("serves over HTTPS trusted only through the test CA, with SAN 127.0.0.1 and localhost", async () => {
    const r = await get(url("/images/fw.bin"), ca.caCertPem);
    expect(r.status).toBe(200);
    expect(eq(r.body, image)).toBe(true);
    expect(r.headers["accept-ranges"]).toBe("bytes");
    expect(r.headers.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(Number(r.headers["content-length"])).toBe(size);
    const viaName = await get(`https://localhost:${host.port}/latest.json`, ca.caCertPem);
    expect(viaName.status).toBe(200);
    expect(viaName.headers["content-type"]).toBe("application/json");
    const otherCa = await makeCa();
    expect((await get(url("/latest.json"), otherCa.caCertPem)).end).toBe("error");
  });

  it("serves in-memory routes with an ETag of their bytes; setting a route again changes it, null removes it", async () => {
    const a = image.slice(0, 5000);
    const b = a.slice();
    b[4999] ^= 1;
    host.setRoute("/mem/fw.bin", a);
    const first = await get(url("/mem/fw.bin"), ca.caCertPem);
    const second = await get(url("/mem/fw.bin"), ca.caCertPem, { range: "bytes=100-", "if-range": first.headers.etag as string });
    expect(first.status).toBe(200);
    expect(eq(first.body, a)).toBe(true);
    expect(second.status).toBe(206);
    host.setRoute("/mem/fw.bin", b);
    const changed = await get(url("/mem/fw.bin"), ca.caCertPem, { range: "bytes=100-", "if-range": first.headers.etag as string });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(first.headers.etag);
    expect(eq(changed.body, b)).toBe(true);
    host.setRoute("/mem/fw.bin", a);
    expect((await get(url("/mem/fw.bin"), ca.caCertPem, {}, "HEAD")).headers.etag).toBe(first.headers.etag);
    host.setRoute("/mem/fw.bin", null);
    expect((await get(url("/mem/fw.bin"), ca.caCertPem)).status).toBe(404);
  });

  it("answers Range with 206 and Content-Range (open, closed and suffix ranges)", async () => {
    for (const [range, start, end] of [["bytes=4096-", 4096, size - 1], ["bytes=10-19", 10, 19], ["bytes=-100", size - 100, size - 1], ["bytes=99990-200000", 99990, size - 1]] as const) {
      const r = await get(url("/images/fw.bin"), ca.caCertPem, { range });
      expect(r.status, range).toBe(206);
      expect(r.headers["content-range"]).toBe(`bytes ${start}-${end}/${size}`);
      expect(eq(r.body, image.subarray(start, end + 1))).toBe(true);
    }
  });

  it("honours If-Range: same ETag -> 206, other ETag -> 200 with the whole body", async () => {
    const etag = (await get(url("/images/fw.bin"), ca.caCertPem, {}, "HEAD")).headers.etag as string;
    expect((await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=500-", "if-range": etag })).status).toBe(206);
    const stale = await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=500-", "if-range": '"stale"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(size);
    expect((await get(url("/images/fw.bin"), ca.caCertPem, { "if-none-match": etag })).status).toBe(304);
  });

  it("HEAD gives the headers and no body; 416 says bytes */size; 404 and traversal are refused", async () => {
    const h = await get(url("/images/fw.bin"), ca.caCertPem, {}, "HEAD");
    expect(h.status).toBe(200);
    expect(Number(h.headers["content-length"])).toBe(size);
    expect(h.body.length).toBe(0);
    const r = await get(url("/images/fw.bin"), ca.caCertPem, { range: `bytes=${size}-` });
    expect(r.status).toBe(416);
    expect(r.headers["content-range"]).toBe(`bytes */${size}`);
    expect((await get(url("/nope.bin"), ca.caCertPem)).status).toBe(404);
    expect((await get(url("/../../etc/passwd"), ca.caCertPem)).status).toBe(404);
    expect((await get(url("/%2e%2e/%2e%2e/etc/passwd"), ca.caCertPem)).status).toBe(404);
    expect(parseRange("bytes=5-2", 10)).toBeNull();
    expect(parseRange("bytes=0-1,4-5", 10)).toBeNull();
    expect(parseRange("bytes=-0", 10)).toBe("unsatisfiable");
  });

  it("counts requests and body bytes per request (resume efficiency)", async () => {
    host.resetStats();
    await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=90000-" });
    expect(host.stats.requests).toBe(1);
    expect(host.stats.bytesSent).toBe(10_000);
    expect(host.stats.log[0]).toMatchObject({ method: "GET", path: "/images/fw.bin", range: "bytes=90000-", status: 206, bytes: 10_000 });
  });
});

describe("update host: hostile faults per path", () => {
  it("ignore-range answers 200 with everything", async () => {
    host.setFault("/images/fw.bin", { kind: "ignore-range", times: 1 });
    const r = await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=100-" });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(size);
    expect((await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=100-" })).status).toBe(206);
    host.setFault("/images/fw.bin", null);
  });

  it("wrong-content-range serves another range than asked, and says so", async () => {
    host.setFault("/images/fw.bin", { kind: "wrong-content-range", shift: 1000 });
    const r = await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=100-" });
    expect(r.status).toBe(206);
    expect(r.headers["content-range"]).toBe(`bytes 1100-${size - 1}/${size}`);
    expect(eq(r.body, image.subarray(1100))).toBe(true);
    host.setFault("/images/fw.bin", null);
  });

  it("cut-at drops the connection at an absolute byte; a resume from there completes", async () => {
    host.setFault("/images/fw.bin", { kind: "cut-at", at: 40_000, times: 1 });
    const first = await get(url("/images/fw.bin"), ca.caCertPem);
    expect(first.end).toBe("aborted");
    expect(host.stats.log.at(-1)).toMatchObject({ status: 200, bytes: 40_000, fault: "cut-at" });
    expect(first.body.length).toBe(40_000);
    expect(eq(first.body, image.subarray(0, 40_000))).toBe(true);
    const rest = await get(url("/images/fw.bin"), ca.caCertPem, { range: `bytes=${first.body.length}-`, "if-range": first.headers.etag as string });
    expect(rest.status).toBe(206);
    expect(eq(new Uint8Array([...first.body, ...rest.body]), image)).toBe(true);
    host.setFault("/images/fw.bin", null);
  });

  it("status list, retry-after and not-found", async () => {
    host.setFault("/latest.json", { kind: "status", statuses: [500, 503, 200] });
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(500);
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(503);
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(200);
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(200);
    host.setFault("/latest.json", { kind: "retry-after", seconds: 120 });
    const ra = await get(url("/latest.json"), ca.caCertPem);
    expect(ra.status).toBe(503);
    expect(ra.headers["retry-after"]).toBe("120");
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(200);
    host.setFault("/latest.json", { kind: "not-found" });
    expect((await get(url("/latest.json"), ca.caCertPem)).status).toBe(404);
    host.setFault("/latest.json", null);
  });

  it("overlong sends more bytes than the response should carry", async () => {
    host.setFault("/images/fw.bin", { kind: "overlong", extra: 100, declared: true, times: 1 });
    const r = await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=0-999" });
    expect(r.status).toBe(206);
    expect(r.body.length).toBe(1100);
    host.setFault("/images/fw.bin", { kind: "overlong", extra: 100, times: 1 });
    host.resetStats();
    const r2 = await get(url("/images/fw.bin"), ca.caCertPem, { range: "bytes=0-999" });
    expect(r2.body.length).toBe(1000); // Content-Length is honest; the junk follows on the wire
    expect(host.stats.log[0]!.bytes).toBe(1100);
    host.setFault("/images/fw.bin", null);
  });

  it("change-etag: after N bytes the resource is new, so If-Range gets 200 and a new ETag", async () => {
    const replacement = image.map((b) => b ^ 0xff);
    host.setRoute("/images/moving.bin", image);
    host.setFault("/images/moving.bin", { kind: "change-etag", afterBytes: 30_000, body: replacement });
    const first = await get(url("/images/moving.bin"), ca.caCertPem, { range: "bytes=0-29999" });
    expect(first.status).toBe(206);
    const again = await get(url("/images/moving.bin"), ca.caCertPem, { range: "bytes=30000-", "if-range": first.headers.etag as string });
    expect(again.status).toBe(200);
    expect(again.headers.etag).not.toBe(first.headers.etag);
    expect(eq(again.body, replacement)).toBe(true);
    host.setRoute("/images/moving.bin", null);
  });

  it("drip sends one byte per virtual second on the VirtualClock", async () => {
    const clock = new VirtualClock();
    const slow = await startUpdateHost({ routes: { "/x.bin": image.subarray(0, 20) }, cert: cert.certPem, key: cert.keyPem, clock, faults: { "/x.bin": { kind: "drip", afterBytes: 10 } } });
    let got = 0;
    let done = false;
    const p = get(slow.url + "/x.bin", ca.caCertPem, {}, "GET", (n) => (got += n)).then((r) => {
      done = true;
      return r;
    });
    await driveUntil(clock, () => done, { quietMs: 5, maxRealMs: 20_000 });
    const r = await p;
    expect(r.body.length).toBe(20);
    expect(eq(r.body, image.subarray(0, 20))).toBe(true);
    expect(got).toBe(20);
    expect(clock.now()).toBe(10_000);
    await slow.close();
  });
});
