/*
 * The download path alone (modules/download.ts + install.ts) over SIM's SimFlash and a real
 * HTTPS host: what the flash sees, in which order, and how each host answer is treated.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { SimFlash } from "../../host-sim/chip/flash";
import { VirtualClock } from "../../backend/clock";
import { driveDevice } from "../../host-sim/chip/device";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { startUpdateHost, type UpdateHost, type Fault } from "../../backend/update-host";
import { makeCa, makeServerCert, type CaBundle } from "../../backend/release/pki";
import { nodeCrypto } from "../../backend/crypto";
import { Downloader, type DownloadJob } from "../../modules/download";
import { UpdateSlot } from "../../modules/install";
import { seededRandom } from "../../modules/backoff";
import { OtaError, type ErrorCode } from "../../modules/errors";
import type { FlashPort } from "../../modules/ports";

const SLOT = 256 * 1024;
const SIZE = 40_000;
const image = Uint8Array.from({ length: SIZE }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
const sha = createHash("sha256").update(image).digest("hex");

let ca: CaBundle;
let host: UpdateHost;
const clock = new VirtualClock();
beforeAll(async () => {
  ca = await makeCa();
  const cert = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
  host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, clock, routes: {} });
});
afterAll(async () => { await host.close(); });

/** Two app slots on a SimFlash; every erase/write of the update slot is logged. */
function rig() {
  const flash = new SimFlash({ size: 2 * SLOT });
  const ops: string[] = [];
  const port: FlashPort = {
    open(label) {
      const base = label === "nextota" ? SLOT : 0;
      return {
        byteLength: SLOT, blockSize: 4096,
        read: (o, t) => flash.read(base + o, t),
        write: (o, d) => { ops.push(`w${o / 4096}`); flash.write(base + o, d); },
        eraseBlock: (b) => { ops.push(`e${b}`); flash.erase(base / 4096 + b); },
      };
    },
    slots: () => ({ count: 2, running: 0, next: 1 }),
  };
  return { flash, ops, slot: new UpdateSlot(port) };
}

let n = 0;
async function download(faults: Fault | Fault[] | null, options: { checkStart?: (b: Uint8Array) => void; maxAttempts?: number; body?: Uint8Array; minBytesPerSec?: number } = {}) {
  const path = `/d${++n}.bin`;
  host.setRoute(path, options.body ?? image);
  host.setFault(path, faults);
  const r = rig();
  const checkpoints: number[] = [];
  const attempts: { code: ErrorCode; at: number; detail: string }[] = [];
  const http = new NodeHttp({ ca: ca.caCertPem, clock });
  const d = new Downloader({
    http, clock, crypto: nodeCrypto, slot: r.slot, buffer: new Uint8Array(4096),
    download: { stallMs: 10_000, minBytesPerSec: options.minBytesPerSec ?? 256, rateWindowMs: 5000, journalEveryBytes: 8192, maxBytesPerSec: 0 },
    retry: { baseMs: 1000, maxMs: 8000, maxAttempts: options.maxAttempts ?? 4 }, random: seededRandom(7),
    checkStart: options.checkStart ?? (() => {}),
    checkpoint: (w) => checkpoints.push(w),
    progress: () => {},
    failedAttempt: (code, detail) => { attempts.push({ code, at: clock.now(), detail }); return attempts.length; },
    log: () => {},
  });
  const job: DownloadJob = { url: `${host.url}${path}`, size: SIZE, sha256: sha, written: 0 };
  let error: OtaError | undefined;
  let done = false;
  const start = clock.now();
  d.run(job).then(() => { done = true; }, (e: OtaError) => { error = e; done = true; });
  await driveDevice(clock, () => done, { maxRealMs: 20_000, quietMs: 50 }, () => http.waiting > 0);
  const written = new Uint8Array(SIZE);
  r.flash.read(SLOT, written);
  const requests = host.stats.log.filter((l) => l.path === path);
  return { ...r, start, error, checkpoints, attempts, requests, intact: createHash("sha256").update(written).digest("hex") === sha };
}

describe("download into the update slot", () => {
  it("erases each block just before writing it, never more than the image", async () => {
    const r = await download(null);
    expect(r.error).toBeUndefined();
    expect(r.intact).toBe(true);
    const blocks = Math.ceil(SIZE / 4096);
    expect(r.ops).toEqual(Array.from({ length: blocks }, (_, i) => [`e${i}`, `w${i}`]).flat());
    expect(r.checkpoints.filter((c) => c > 0)).toEqual([8192, 16384, 24576, 32768]);
  });

  it("checks the first block before the first write", async () => {
    const r = await download(null, { checkStart: () => { throw new OtaError("IMAGE_CHIP", "test"); } });
    expect(r.error?.code).toBe("IMAGE_CHIP");
    expect(r.ops).toEqual([]);
    expect(r.requests.length).toBe(1);
  });

  it("resumes after a cut from the last whole block, with If-Range", async () => {
    const r = await download({ kind: "cut-at", at: 10_000, times: 1 });
    expect(r.intact).toBe(true);
    expect(r.requests[1]!.range).toBe("bytes=8192-");
    expect(r.requests[1]!.ifRange).toMatch(/^".+"$/);
    expect(r.ops.filter((o) => o === "e0").length).toBe(1); // not restarted
  });

  it("a connection drop at any byte resumes from the last whole block and ends intact", async () => {
    // Edges (first byte, block boundaries, last byte) and seeded random offsets.
    const random = seededRandom(42);
    const offsets = [1, 4095, 4096, 4097, 8191, SIZE - 4096, SIZE - 1, ...Array.from({ length: 13 }, () => 1 + Math.floor(random() * (SIZE - 2)))];
    for (const at of offsets) {
      const r = await download({ kind: "cut-at", at, times: 1 });
      expect(r.intact, `cut at ${at}`).toBe(true);
      const resumed = r.requests[1]!;
      expect(resumed, `cut at ${at}`).toBeDefined();
      const from = resumed.range ? Number(/bytes=(\d+)-/.exec(resumed.range)![1]) : 0;
      expect(from % 4096, `cut at ${at}`).toBe(0);
      expect(from, `cut at ${at}`).toBeLessThanOrEqual(at);
      expect(at - from, `cut at ${at}`).toBeLessThan(4096 + 4096);
    }
  });

  it.each([
    [403, "HTTP_CLIENT_ERROR", 1],
    [404, "HTTP_NOT_FOUND", 1],
    [410, "HTTP_CLIENT_ERROR", 1],
  ])("status %i is permanent: %s after %i request", async (status, code, requests) => {
    const r = await download({ kind: "status", statuses: [status, status, status, status, status] });
    expect(r.error?.code).toBe(code);
    expect(r.requests.length).toBe(requests);
    expect(r.ops).toEqual([]);
  });

  it.each([408, 429, 500, 502, 503])("status %i is retried with backoff", async (status) => {
    const r = await download({ kind: "status", statuses: [status, status] });
    expect(r.error).toBeUndefined();
    expect(r.intact).toBe(true);
    expect(r.requests.length).toBe(3);
    // the first retry waits [baseMs / 2, baseMs] (equal jitter)
    expect(r.attempts[1]!.at - r.attempts[0]!.at).toBeGreaterThanOrEqual(1000 / 2);
  });

  it("honours Retry-After", async () => {
    const start = clock.now();
    const r = await download({ kind: "retry-after", seconds: 42 });
    expect(r.intact).toBe(true);
    expect(clock.now() - start).toBeGreaterThanOrEqual(42_000);
  });

  it("stops at the attempt cap with the last code", async () => {
    const r = await download({ kind: "status", statuses: [500, 500, 500, 500, 500, 500] }, { maxAttempts: 3 });
    expect(r.error?.code).toBe("HTTP_SERVER_ERROR");
    expect(r.requests.length).toBe(3);
  });

  it("a host that drips one byte per second ends each attempt with HTTP_TIMEOUT, then gives up", async () => {
    const r = await download({ kind: "drip", afterBytes: 6000 }, { maxAttempts: 3 });
    expect(r.error?.code).toBe("HTTP_TIMEOUT");
    expect(r.attempts.map((a) => a.code)).toEqual(["HTTP_TIMEOUT", "HTTP_TIMEOUT", "HTTP_TIMEOUT"]);
  });

  it("a body that goes silent for stallMs ends the attempt exactly stallMs after its last bytes; gaps just under it never do", async () => {
    // The rate check off, so only the stall timer can end an attempt.
    const silent = await download({ kind: "drip", afterBytes: 6000, intervalMs: 25_000, bytesPerTick: 4000 }, { maxAttempts: 1, minBytesPerSec: 0 });
    expect(silent.error?.code).toBe("HTTP_TIMEOUT");
    expect(silent.attempts).toEqual([{ code: "HTTP_TIMEOUT", at: silent.start + 10_000, detail: "no data for 10000 ms at byte 6000" }]);
    const slow = await download({ kind: "drip", afterBytes: 6000, intervalMs: 9_900, bytesPerTick: 4000 }, { maxAttempts: 1, minBytesPerSec: 0 });
    expect(slow.error).toBeUndefined();
    expect(slow.intact).toBe(true);
  });

  it.each([["ignore-range", "HTTP_RANGE"], ["wrong-content-range", "HTTP_RANGE"]] as const)("%s after a cut restarts from 0 (%s)", async (kind, code) => {
    // the host counts a use of the fault on every request, the first (no Range) included
    const r = await download([{ kind: "cut-at", at: 10_000, times: 1 }, { kind, times: kind === "ignore-range" ? 2 : 1 } as Fault]);
    expect(r.intact).toBe(true);
    expect(r.attempts.map((a) => a.code)).toEqual(["HTTP_CLOSED", code]);
    expect(r.requests[2]!.range).toBeUndefined();
  });

  it("bytes beyond Content-Length never reach the slot", async () => {
    const r = await download({ kind: "overlong", extra: 64 });
    expect(r.error).toBeUndefined();
    expect(r.intact).toBe(true);
    const declared = await download({ kind: "overlong", extra: 64, declared: true });
    expect(declared.error?.code).toBe("DOWNLOAD_SIZE");
    expect(declared.ops).toEqual([]);
  });

  it("a host serving other bytes than the manifest says fails the hash", async () => {
    const other = image.slice();
    other[20_000] ^= 0xff;
    const r = await download(null, { body: other });
    expect(r.error?.code).toBe("DOWNLOAD_HASH");
  });

  it("a body shorter than announced is DOWNLOAD_SIZE before a byte is written", async () => {
    const r = await download(null, { body: image.subarray(0, 30_000) });
    expect(r.error?.code).toBe("DOWNLOAD_SIZE");
    expect(r.ops).toEqual([]);
  });
});
