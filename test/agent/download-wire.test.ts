/*
 * The download path against a host that controls every byte (host-sim/lab/wire-host.ts, TLS on a
 * raw socket): however a response ends, the outcome is decided from what was written and
 * hashed (modules/download-outcome.ts). Each case ends in a commit-ready slot (state
 * "written", bytes equal to the image) or a named code; never a slot past the image's size.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { SimFlash } from "../../host-sim/chip/flash";
import { VirtualClock } from "../../backend/clock";
import { driveDevice } from "../../host-sim/chip/device";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { BEFORE_RESET_MS, startWireHost, head, honest, chunked, type WireHost, type WireScript } from "../../host-sim/lab/wire-host";
import { makeCa, makeServerCert, type CaBundle } from "../../backend/release/pki";
import { nodeCrypto } from "../../backend/crypto";
import { Downloader } from "../../modules/download";
import { attemptComplete, readRoom } from "../../modules/download-outcome";
import { UpdateSlot } from "../../modules/install";
import { seededRandom } from "../../modules/backoff";
import { fetchSmall } from "../../modules/fetch";
import type { OtaError, ErrorCode } from "../../modules/errors";
import type { FlashPort } from "../../modules/ports";

const SLOT = 128 * 1024;
const SIZE = 20_000;
const image = Uint8Array.from({ length: SIZE }, (_, i) => (i * 29 + (i >> 7)) & 0xff);
const sha = createHash("sha256").update(image).digest("hex");
const EXTRA = new TextEncoder().encode("\r\n<html>trailing junk from a proxy</html>\r\n");

let ca: CaBundle;
let wire: WireHost;
const clock = new VirtualClock();
beforeAll(async () => {
  ca = await makeCa();
  const cert = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
  wire = await startWireHost({ cert: cert.certPem, key: cert.keyPem });
});
afterAll(async () => { await wire.close(); });

let n = 0;
async function download(script: WireScript) {
  const path = `/w${++n}.bin`;
  wire.route(path, image, script);
  const flash = new SimFlash({ size: 2 * SLOT });
  const port: FlashPort = {
    open: () => ({ byteLength: SLOT, blockSize: 4096, read: (o, t) => flash.read(SLOT + o, t), write: (o, d) => flash.write(SLOT + o, d), eraseBlock: (b) => flash.erase(SLOT / 4096 + b) }),
    slots: () => ({ count: 2, running: 0, next: 1 }),
  };
  const slot = new UpdateSlot(port);
  const attempts: ErrorCode[] = [];
  const http = new NodeHttp({ ca: ca.caCertPem, clock });
  const d = new Downloader({
    http, clock, crypto: nodeCrypto, slot, buffer: new Uint8Array(4096),
    download: { stallMs: 10_000, minBytesPerSec: 16, rateWindowMs: 5000, journalEveryBytes: 8192, maxBytesPerSec: 0 },
    retry: { baseMs: 1000, maxMs: 4000, maxAttempts: 3 }, random: seededRandom(3),
    checkStart: () => {}, checkpoint: () => {}, progress: () => {},
    failedAttempt: (code) => { attempts.push(code); return attempts.length; },
    log: () => {},
  });
  let error: OtaError | undefined;
  let done = false;
  d.run({ url: `${wire.url}${path}`, size: SIZE, sha256: sha, written: 0 }).then(() => { done = true; }, (e: OtaError) => { error = e; done = true; });
  await driveDevice(clock, () => done, { maxRealMs: 20_000, quietMs: 50 }, () => http.waiting > 0 || wire.pausing > 0);
  // The whole slot: nothing past SIZE may have been written (erased flash reads 0xFF).
  const all = new Uint8Array(SLOT);
  flash.read(SLOT, all);
  const past = all.subarray(SIZE, 6 * 4096).every((b) => b === 0xff);
  const intact = createHash("sha256").update(all.subarray(0, SIZE)).digest("hex") === sha;
  return { error, code: error?.code, attempts, state: slot.state, intact, past, requests: wire.log.filter((r) => r.path === path) };
}

const body = (script: (h: ReturnType<typeof honest>) => ReturnType<WireScript>): WireScript => (req, r) => script(honest(req, r));

describe("download: the attempt's end is judged from the bytes written", () => {
  it("extra bytes in the same write as the last body bytes: complete (an honest image commits)", async () => {
    const r = await download(body((h) => [{ write: h.head }, { write: h.body.subarray(0, 8000) }, { write: Buffer.concat([h.body.subarray(8000), EXTRA]) }, { end: "fin" }]));
    expect(r.error).toBeUndefined();
    expect([r.state, r.intact, r.past]).toEqual(["written", true, true]);
    expect(r.requests.length).toBe(1);
  });

  it("extra bytes in a later write, and extra bytes before a reset: complete", async () => {
    for (const end of ["fin", "reset"] as const) {
      const r = await download(body((h) => [{ write: h.head + "" }, { write: h.body }, { write: EXTRA }, { pause: BEFORE_RESET_MS }, { end }]));
      expect(r.error, end).toBeUndefined();
      expect([r.state, r.intact, r.past], end).toEqual(["written", true, true]);
    }
  });

  it("a body that ends exactly at its length and then resets counts as complete", async () => {
    const r = await download(body((h) => [{ write: h.head }, { write: h.body }, { pause: BEFORE_RESET_MS }, { end: "reset" }]));
    expect(r.error).toBeUndefined();
    expect([r.state, r.intact, r.requests.length]).toEqual(["written", true, 1]);
  });

  it("a reset one byte short resumes with Range and ends intact", async () => {
    const r = await download((req, res) => {
      const h = honest(req, res);
      return req.n === 0 ? [{ write: h.head }, { write: h.body.subarray(0, SIZE - 1) }, { pause: BEFORE_RESET_MS }, { end: "reset" }] : [{ write: h.head }, { write: h.body }, { end: "fin" }];
    });
    expect(r.error).toBeUndefined();
    expect(r.attempts).toEqual(["HTTP_CLOSED"]);
    expect(r.requests[1]!.headers["range"]).toBe(`bytes=${SIZE - (SIZE % 4096)}-`);
    expect([r.state, r.intact]).toEqual(["written", true]);
  });

  it("status line and headers one byte per write, then a half-close: complete", async () => {
    const r = await download(body((h) => [{ bytewise: h.head }, { write: h.body }, { end: "half-close" }]));
    expect(r.error).toBeUndefined();
    expect([r.state, r.intact]).toEqual(["written", true]);
  });

  it("no Content-Length, closed at the end: complete; longer than the manifest's size: HTTP_TOO_LONG, nothing past it in the slot", async () => {
    const exact = await download(() => [{ write: head(200, [["Connection", "close"]]) }, { write: image }, { end: "fin" }]);
    expect(exact.error).toBeUndefined();
    expect([exact.state, exact.intact]).toEqual(["written", true]);
    const longer = await download(() => [{ write: head(200, [["Connection", "close"]]) }, { write: Buffer.concat([image, EXTRA]) }, { end: "fin" }]);
    expect(longer.code).toBe("HTTP_TOO_LONG");
    expect([longer.state, longer.past, longer.requests.length]).toEqual(["writing", true, 1]);
  });

  it("chunked: accepted when its total is the manifest's size, refused when longer", async () => {
    const te: [string, string][] = [["Transfer-Encoding", "chunked"], ["Connection", "close"]];
    const ok = await download(() => [{ write: head(200, te) }, { write: chunked(image, 3000) }, { end: "fin" }]);
    expect(ok.error).toBeUndefined();
    expect([ok.state, ok.intact]).toEqual(["written", true]);
    const over = await download(() => [{ write: head(200, te) }, { write: chunked(Buffer.concat([image, EXTRA]), 3000) }, { end: "fin" }]);
    expect(over.code).toBe("HTTP_TOO_LONG");
    expect(over.past).toBe(true);
  });

  it("Content-Encoding gzip: HTTP_ENCODING, one request, nothing written", async () => {
    const gz = gzipSync(image);
    const r = await download(() => [{ write: head(200, [["Content-Length", gz.length], ["Content-Encoding", "gzip"], ["Connection", "close"]]) }, { write: gz }, { end: "fin" }]);
    expect(r.code).toBe("HTTP_ENCODING");
    expect([r.requests.length, r.intact]).toEqual([1, false]);
  });

  it("a header line longer than the device's header buffer: HTTP_PROTOCOL, not retried", async () => {
    const r = await download(body((h) => [{ write: h.head.replace("\r\n", `\r\nX-Amz-Meta: ${"a".repeat(9000)}\r\n`) }, { write: h.body }, { end: "fin" }]));
    expect(r.code).toBe("HTTP_PROTOCOL");
    expect(r.requests.length).toBe(1);
  });

  it("duplicated Content-Length (equal or not): HTTP_PROTOCOL", async () => {
    for (const second of [SIZE, SIZE + 10]) {
      const r = await download(() => [{ write: head(200, [["Content-Length", SIZE], ["Content-Length", second], ["Connection", "close"]]) }, { write: image }, { end: "fin" }]);
      expect(r.code, String(second)).toBe("HTTP_PROTOCOL");
    }
  });

  it("a 206 with a second Content-Range: HTTP_RANGE, restart from 0, then intact", async () => {
    const r = await download((req, res) => {
      const h = honest(req, res);
      if (req.n === 0) return [{ write: h.head }, { write: h.body.subarray(0, 9000) }, { pause: BEFORE_RESET_MS }, { end: "reset" }];
      if (req.n === 1) return [{ write: h.head.replace("Content-Range:", "Content-Range: bytes 0-19999/20000\r\nContent-Range:") }, { write: h.body }, { end: "fin" }];
      return [{ write: h.head }, { write: h.body }, { end: "fin" }];
    });
    expect(r.error).toBeUndefined();
    expect(r.attempts).toEqual(["HTTP_CLOSED", "HTTP_RANGE"]);
    expect(r.requests[2]!.headers["range"]).toBeUndefined();
    expect(r.intact).toBe(true);
  });
});

describe("the manifest over the wire", () => {
  const text = new TextEncoder().encode(JSON.stringify({ payload: "x".repeat(3000), signatures: [] }));
  async function fetch(script: WireScript) {
    const path = `/m${++n}.json`;
    wire.route(path, text, script);
    const http = new NodeHttp({ ca: ca.caCertPem, clock });
    let out: Uint8Array | undefined;
    let error: OtaError | undefined;
    let done = false;
    fetchSmall({ http, clock }, `${wire.url}${path}`, 8192, 10_000).then((b) => { out = b; done = true; }, (e: OtaError) => { error = e; done = true; });
    await driveDevice(clock, () => done, { maxRealMs: 20_000, quietMs: 50 }, () => http.waiting > 0 || wire.pausing > 0);
    return { same: out !== undefined && Buffer.from(out).equals(text), code: error?.code };
  }

  it("chunked, close-delimited and split one byte per write: the same bytes", async () => {
    expect(await fetch(() => [{ write: head(200, [["Transfer-Encoding", "chunked"]]) }, { write: chunked(text, 700) }, { end: "fin" }])).toEqual({ same: true, code: undefined });
    expect(await fetch(() => [{ write: head(200, [["Connection", "close"]]) }, { write: text }, { end: "fin" }])).toEqual({ same: true, code: undefined });
    expect(await fetch(body((h) => [{ bytewise: h.head }, { write: h.body }, { end: "fin" }]))).toEqual({ same: true, code: undefined });
  });

  it("gzip is refused with HTTP_ENCODING, a duplicated Content-Length with HTTP_PROTOCOL", async () => {
    const gz = gzipSync(text);
    expect((await fetch(() => [{ write: head(200, [["Content-Length", gz.length], ["Content-Encoding", "gzip"]]) }, { write: gz }, { end: "fin" }])).code).toBe("HTTP_ENCODING");
    expect((await fetch(() => [{ write: head(200, [["Content-Length", text.length], ["Content-Length", text.length]]) }, { write: text }, { end: "fin" }])).code).toBe("HTTP_PROTOCOL");
  });
});

describe("the outcome rule", () => {
  it("complete only at the manifest's size, unless the body itself was refused", () => {
    expect(attemptComplete({ ok: false, code: "HTTP_CLOSED" }, SIZE, SIZE)).toBe(true);
    expect(attemptComplete({ ok: false, code: "HTTP_PROTOCOL" }, SIZE, SIZE)).toBe(true);
    expect(attemptComplete({ ok: false, code: "HTTP_TOO_LONG" }, SIZE, SIZE)).toBe(false);
    expect(attemptComplete({ ok: false, code: "HTTP_CLOSED" }, SIZE - 1, SIZE)).toBe(false);
    expect(() => attemptComplete({ ok: true }, SIZE + 1, SIZE)).toThrow(RangeError);
    expect(readRoom(16384, 100, 4096, SIZE)).toBe(SIZE - 16384 - 100);
    expect(readRoom(0, 0, 4096, SIZE)).toBe(4096);
    expect(readRoom(SIZE, 0, 4096, SIZE)).toBe(0);
  });
});
