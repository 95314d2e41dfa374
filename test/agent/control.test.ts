/*
 * The download loop under per-update control (modules/control.ts DownloadGate): the bandwidth
 * cap measured in bytes per virtual second over a real HTTPS host, pause (not an attempt,
 * resumed with a Range request) and cancel, and the signed control commands' checks.
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
import { Downloader } from "../../modules/download";
import { UpdateSlot } from "../../modules/install";
import { seededRandom } from "../../modules/backoff";
import { DownloadGate, verifyControl } from "../../modules/control";
import { OtaError, type ErrorCode } from "../../modules/errors";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { signPayload } from "../../backend/release/manifest-tool";
import { memoryStore } from "../xs/helpers";
import type { FlashPort } from "../../modules/ports";
import { codeOf } from "../codes";

const SLOT = 256 * 1024;
const SIZE = 40_000;
const image = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
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

let n = 0;
/** Download the image through `gate`; `during(written, gate)` is called per block written. */
async function download(gate: DownloadGate, during: (written: number, at: number) => void = () => {}, fault: Fault | null = null, onAttempt: () => void = () => {}) {
  const path = `/c${++n}.bin`;
  host.setRoute(path, image);
  host.setFault(path, fault);
  const flash = new SimFlash({ size: 2 * SLOT });
  const port: FlashPort = {
    open: (label) => {
      const base = label === "nextota" ? SLOT : 0;
      return { byteLength: SLOT, blockSize: 4096, read: (o, t) => flash.read(base + o, t), write: (o, d) => flash.write(base + o, d), eraseBlock: (b) => flash.erase(base / 4096 + b) };
    },
    slots: () => ({ count: 2, running: 0, next: 1 }),
  };
  const attempts: ErrorCode[] = [];
  const checkpoints: number[] = [];
  const marks: { written: number; at: number }[] = [];
  const http = new NodeHttp({ ca: ca.caCertPem, clock });
  const d = new Downloader({
    http, clock, crypto: nodeCrypto, slot: new UpdateSlot(port), buffer: new Uint8Array(4096), gate,
    download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192, maxBytesPerSec: 0 },
    retry: { baseMs: 1000, maxMs: 8000, maxAttempts: 4 }, random: seededRandom(7),
    checkStart: () => {}, checkpoint: (w) => checkpoints.push(w),
    progress: (w) => { marks.push({ written: w, at: clock.now() }); during(w, clock.now()); },
    failedAttempt: (code) => { attempts.push(code); onAttempt(); return attempts.length; },
    log: () => {},
  });
  let error: OtaError | undefined;
  let done = false;
  const start = clock.now();
  d.run({ url: `${host.url}${path}`, size: SIZE, sha256: sha, written: 0 }).then(() => { done = true; }, (e: OtaError) => { error = e; done = true; });
  await driveDevice(clock, () => done, { maxRealMs: 20_000, quietMs: 30 }, () => http.waiting > 0);
  const written = new Uint8Array(SIZE);
  flash.read(SLOT, written);
  const requests = host.stats.log.filter((l) => l.path === path);
  return { error, attempts, checkpoints, marks, start, end: clock.now(), requests, intact: createHash("sha256").update(written).digest("hex") === sha };
}

describe("bandwidth cap", () => {
  it("holds the download to the cap, in bytes per virtual second", async () => {
    const cap = 8192;
    const r = await download(new DownloadGate(clock, cap));
    expect(r.error).toBeUndefined();
    expect(r.intact).toBe(true);
    // The bucket starts with one block: the rest (SIZE - 4096) comes at the cap.
    const seconds = (r.end - r.start) / 1000;
    const rate = SIZE / seconds;
    console.log(`bandwidth cap ${cap} B/s: ${SIZE} bytes in ${seconds} virtual s = ${Math.round(rate)} B/s`);
    expect(rate).toBeLessThanOrEqual(cap * 1.15);
    expect(rate).toBeGreaterThan(cap * 0.8);
    // Over any stretch of whole seconds after the first block, never more than the cap + one block.
    for (const a of r.marks) for (const b of r.marks) {
      if (b.at - a.at >= 1000) expect(b.written - a.written).toBeLessThanOrEqual((cap * (b.at - a.at)) / 1000 + 4096);
    }
    expect(r.attempts).toEqual([]);
    expect(r.requests.length).toBe(1);
  });

  it("an uncapped download takes no virtual time", async () => {
    const r = await download(new DownloadGate(clock, 0));
    expect(r.intact).toBe(true);
    expect(r.end - r.start).toBe(0);
  });
});

describe("pause, resume, cancel in the download loop", () => {
  it("a pause ends the connection without counting an attempt; resume continues with a Range request", async () => {
    const gate = new DownloadGate(clock, 8192);
    let paused = false;
    const r = await download(gate, (w) => {
      if (!paused && w >= 16_384) {
        paused = true;
        gate.pause();
        clock.setTimeout(() => gate.resume(), 3600_000);
      }
    });
    expect(r.error).toBeUndefined();
    expect(r.intact).toBe(true);
    expect(r.attempts).toEqual([]);
    expect(r.requests.length).toBe(2);
    expect(r.requests[1]!.range).toMatch(/^bytes=(16384|20480)-$/);
    expect(r.end - r.start).toBeGreaterThanOrEqual(3600_000);
  });

  it("a cancel ends the download with CONTROL_CANCELLED and no attempt counted", async () => {
    const gate = new DownloadGate(clock, 8192);
    const r = await download(gate, (w) => { if (w >= 8192) gate.cancel(); });
    expect(r.error?.code).toBe("CONTROL_CANCELLED");
    expect(r.attempts).toEqual([]);
    expect(r.requests.length).toBe(1);
  });

  it("a cancel during a retry's backoff ends it at once", async () => {
    const gate = new DownloadGate(clock, 0);
    const r = await download(gate, () => {}, { kind: "status", statuses: [500, 500, 500, 500] }, () => { clock.setTimeout(() => gate.cancel(), 10); });
    expect(r.error?.code).toBe("CONTROL_CANCELLED");
    expect(r.attempts).toEqual(["HTTP_SERVER_ERROR"]);
    expect(r.end - r.start).toBeLessThan(100); // the backoff (1 s base) was cut short
  });

  it("a cancel while paused ends it too", async () => {
    const gate = new DownloadGate(clock, 8192);
    const r = await download(gate, (w) => {
      if (w >= 8192 && !gate.halted()) {
        gate.pause();
        clock.setTimeout(() => gate.cancel(), 60_000);
      }
    });
    expect(r.error?.code).toBe("CONTROL_CANCELLED");
    expect(r.requests.length).toBe(1);
  });
});

describe("signed control commands", () => {
  it("accepts a trusted key's command for this device once; refuses replays, other devices, other keys", async () => {
    const key = generateKey("ecdsa-p256");
    const rogue = { ...generateKey("ecdsa-p256"), id: key.id }; // claims the trusted key's id
    const keys = [trustedKeyOf(key)];
    const store = memoryStore();
    const env = (k: typeof key, p: Record<string, unknown>) => signPayload(new TextEncoder().encode(JSON.stringify({ schema: 1, ...p })), [k]);
    const ok = env(key, { cmd: "pause", device: "d1", issued: 1000 });
    expect(verifyControl(ok, keys, nodeCrypto, "d1", store).cmd).toBe("pause");
    expect(codeOf(() => verifyControl(ok, keys, nodeCrypto, "d1", store))).toBe("ANNOUNCE_INVALID");
    expect(codeOf(() => verifyControl(env(key, { cmd: "resume", device: "d2", issued: 2000 }), keys, nodeCrypto, "d1", store))).toBe("ANNOUNCE_INVALID");
    expect(codeOf(() => verifyControl(env(rogue, { cmd: "resume", device: "d1", issued: 3000 }), keys, nodeCrypto, "d1", store))).toBe("SIG_INVALID");
    expect(codeOf(() => verifyControl(env(key, { cmd: "reboot", device: "d1", issued: 4000 }), keys, nodeCrypto, "d1", store))).toBe("ANNOUNCE_INVALID");
    expect(verifyControl(env(key, { cmd: "resume", device: "d1", issued: 5000 }), keys, nodeCrypto, "d1", store).cmd).toBe("resume");
  });
});
