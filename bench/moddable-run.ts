/*
 * Figures from Moddable's own runtime (moddable-host/, built for x-cli-lin), all in one program
 * build and one Lab (update host, CA, keys):
 * - throughput: the agent's update of one image (image GET -> restart(), ticks inside the program,
 *   --timing) vs the program's raw download of the same URL (--raw: the same src/http.ts over
 *   Moddable's http + securesocket, each fragment into a 4 KB buffer and crypt's Digest SHA-256);
 *   the ratio is raw ms / agent ms (goal >= 0.9). The Linux socket reads 1,024 bytes per 20 ms
 *   poll (~48 KB/s), so absolute rates mean nothing; both sides pay it alike.
 * - memory (--memory: a full GC and a sample every 20 ms, moddable-host/memory.ts): peak live
 *   chunk bytes and slots of the idle app (host.c --idle: none of the agent's modules imported),
 *   of the raw download, and of each boot of an update; the agent's share = update peak - idle
 *   peak, slots at the ESP32's 16 bytes each (the host's are 32), chunks as measured on this
 *   64-bit host (pointers in chunks are 8 bytes here, 4 on the chip: an upper bound).
 * - memory by include: the same update with the agent's core alone (a program built with the
 *   features' stubs, host-sim/engines/moddable/build.ts coreManifest) and with every feature, both
 *   configured with a broker (aedes on loopback): the full set reports over MQTT, the core only
 *   logs the broker. Each as the agent's own peak (update above the raw download).
 * Skipped, with the reason, when no Moddable tree can be found or built.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, FACTORY } from "../host-sim/lab/lab";
import { buildCoreProgram, moddableProgram, moddableTree } from "../host-sim/engines/moddable/build";
import { startBroker } from "../backend/mqtt/broker";
import { ModdableDevice, derBase64 } from "../host-sim/engines/moddable/driver";
import { FAST } from "../host-sim/engines/moddable/scenarios";
import { DEFAULTS } from "../modules/config";
import { FULL_IMAGE, publishRelease } from "./pipeline";
import { generateDeviceKey } from "../backend/release/encrypted-img";

export const THROUGHPUT_GOAL = 0.9;
/** The agent's RAM above the idle app, bytes (the goal: 12 KiB; Mender MCU needs 15 KiB). */
export const MEMORY_GOAL = 12 * 1024;
export const MENDER_RAM = 15 * 1024;
/** sizeof(txSlot) on the ESP32 (32-bit pointers). */
export const ESP32_SLOT_BYTES = 16;

/** moddable-host/memory.ts MemoryPeaks, as the program prints it. */
export interface MemoryPeaks {
  /** The worst sample's live chunk bytes and slots (one sample's). */
  chunks: number;
  slots: number;
  peakChunks: number;
  peakSlots: number;
  chunkHeap: number;
  slotHeap: number;
  stack: number;
  stackSlots: number;
  slotBytes: number;
  regexStack: number;
  samples: number;
  /** Per agent state, its sample with the most live bytes. */
  phases: Record<string, { chunks: number; slots: number }>;
}

export interface ModdableRuntimeResult {
  skipped?: string;
  imageBytes: number;
  raw: { ms: number; headersMs: number; bytesPerMs: number };
  agent: { ms: number; bytesPerMs: number; final: string | null };
  /** raw ms / agent ms. */
  ratio: number;
  memory: {
    imageBytes: number;
    idle: MemoryPeaks;
    raw: MemoryPeaks;
    /** Per boot of the update (update boot, confirm boot). */
    boots: MemoryPeaks[];
    /** The highest of the boots, field by field, but chunks and slots: the worst boot's live peak. */
    update: MemoryPeaks;
    /** Live peak bytes above idle at 16 B per slot: chunks + slots. */
    agentAboveIdle: number;
    rawAboveIdle: number;
    /**
     * The update with the core alone and with every feature (reporting over MQTT): the worst
     * boot's peak, and the agent's own part (live bytes above the raw download).
     */
    byInclude?: Record<"core" | "full", { update: MemoryPeaks; own: number; events: number }>;
  };
  /**
   * Issue 31: the same update from an esp_encrypted_img file (RSA-3072 device key): its ms (image
   * GET -> restart), plain agent ms / encrypted agent ms, and its worst boot's live peak and how far
   * above the plain update's (16 B per slot) it is, measured at the memory runs' image size.
   */
  encrypted?: { ms: number; ratio: number; update: MemoryPeaks; addedBytes: number };
  seconds: number;
}

const EMPTY_PEAKS: MemoryPeaks = { chunks: 0, slots: 0, peakChunks: 0, peakSlots: 0, chunkHeap: 0, slotHeap: 0, stack: 0, stackSlots: 0, slotBytes: 0, regexStack: 0, samples: 0, phases: {} };

function run(program: string, args: string[], timeoutMs: number): Promise<{ status: number | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, lines: out.split("\n") });
    });
  });
}

const lineJson = <T>(lines: string[], prefix: string): T[] => lines.filter((l) => l.startsWith(prefix)).map((l) => JSON.parse(l.slice(prefix.length)) as T);

/** XS's marks and the heaps field by field; the live peak (chunks, slots) and each phase's are one sample's, the worst boot's. */
function maxPeaks(all: MemoryPeaks[]): MemoryPeaks {
  const out: MemoryPeaks = { ...EMPTY_PEAKS, phases: {} };
  for (const p of all) {
    for (const k of Object.keys(out) as (keyof MemoryPeaks)[]) if (k !== "phases" && k !== "chunks" && k !== "slots") out[k] = Math.max(out[k], p[k]);
    if (liveBytes(p) > liveBytes(out)) {
      out.chunks = p.chunks;
      out.slots = p.slots;
    }
    for (const [name, v] of Object.entries(p.phases ?? {})) {
      const had = out.phases[name];
      if (!had || liveBytes(v) > liveBytes(had)) out.phases[name] = v;
    }
  }
  return out;
}

/** Live bytes at the chip's slot size: chunk bytes + slots x 16. */
export const liveBytes = (p: { chunks: number; slots: number }) => p.chunks + p.slots * ESP32_SLOT_BYTES;

export async function moddableRuntime(o: { size?: number; memorySize?: number; progress?: (line: string) => void } = {}): Promise<ModdableRuntimeResult> {
  const size = o.size ?? FULL_IMAGE;
  const memorySize = o.memorySize ?? Math.min(size, 256 * 1024);
  const say = o.progress ?? (() => {});
  const empty: ModdableRuntimeResult = {
    imageBytes: size, raw: { ms: 0, headersMs: 0, bytesPerMs: 0 }, agent: { ms: 0, bytesPerMs: 0, final: null }, ratio: 0,
    memory: { imageBytes: memorySize, idle: EMPTY_PEAKS, raw: EMPTY_PEAKS, boots: [], update: EMPTY_PEAKS, agentAboveIdle: 0, rawAboveIdle: 0 }, seconds: 0,
  };
  let built: { program: string } | { skip: string };
  try {
    built = moddableProgram(say);
  } catch (e) {
    return { ...empty, skipped: `the moddable-host build failed: ${(e as Error).message.split("\n")[0]}` };
  }
  if ("skip" in built) return { ...empty, skipped: built.skip };
  const program = built.program;
  const t0 = performance.now();
  const lab = await Lab.create();
  const work = mkdtempSync(join(tmpdir(), "xsota-moddable-bench-"));
  try {
    const bootFile = join(work, "raw-boot.json");
    writeFileSync(bootFile, JSON.stringify({ ca: derBase64(lab.ca.caCertPem) }));
    const raw = async (url: string, image: Uint8Array, memory: boolean) => {
      const r = await run(program, ["--boot", bootFile, "--nvs", work, "--raw", url, ...(memory ? ["--memory"] : [])], 300_000);
      const [res] = lineJson<{ bytes: number; ms: number; headersMs: number; sha256: string; error?: string }>(r.lines, "@raw ");
      if (r.status !== 0 || !res || res.error) throw new Error(`raw download on Moddable: status ${r.status}: ${res?.error ?? ""} | ${r.lines.filter((l) => !l.startsWith("@raw ")).slice(-6).join(" | ")}`);
      if (res.bytes !== image.length || res.sha256 !== createHash("sha256").update(image).digest("hex")) throw new Error(`raw download on Moddable: ${res.bytes} bytes, sha256 ${res.sha256}: not the image`);
      return { ...res, memory: lineJson<MemoryPeaks>(r.lines, "@memory ")[0] };
    };
    const agent = async (dir: string, imageBytes: number, memory: boolean, o: { program?: string; mqtt?: { host: string; port: number }; encryptFor?: string } = {}) => {
      const release = o.encryptFor ? lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1, size: imageBytes }, encrypt: { key: o.encryptFor } }) : publishRelease(lab, dir, imageBytes);
      const flashPath = join(work, `${dir}.bin`);
      lab.chip(FACTORY).save(flashPath);
      const logs: string[] = [];
      const device = new ModdableDevice({
        program: o.program ?? program, flashPath, caPem: lab.ca.caCertPem, deviceId: "240ac4000001", hardware: "esp32-rev3",
        config: lab.config(release.manifestUrl, { ...FAST, download: { ...DEFAULTS.download }, ...(o.mqtt ? { mqtt: o.mqtt } : {}), ...(o.encryptFor ? { decryptionKey: o.encryptFor } : {}) }),
        programArgs: memory ? ["--memory"] : ["--timing"], bootTimeoutMs: 300_000, onLog: (l) => logs.push(l),
      });
      await device.run();
      const final = [...device.events].reverse().find((e) => e.state !== "downloading")?.state ?? null;
      if (final !== "committed") throw new Error(`agent update on Moddable ended ${final}: ${device.logs.slice(-5).join(" | ")}`);
      return { release, logs, final, memory: lineJson<MemoryPeaks>(logs, "@memory "), events: device.events.length };
    };

    say(`moddable: raw download of ${size} B`);
    const published = publishRelease(lab, "moddable-raw", size);
    const r = await raw(published.imageUrl, published.image, false);
    say(`moddable: agent update of ${size} B`);
    const a = await agent("moddable-agent", size, false);
    // the image request of the update boot, and the restart() that ends it, in the program's own ticks
    const windowMs = (x: typeof a) => {
      const times = x.logs.filter((l) => l.startsWith("@time ")).map((l) => l.split(" "));
      const requestAt = times.find((t) => t[1] === "request" && t[2] === x.release.imageUrl);
      const restartAt = requestAt && times.slice(times.indexOf(requestAt)).find((t) => t[1] === "restart");
      if (!requestAt || !restartAt) throw new Error(`agent update on Moddable: no image request or no restart in ${times.map((t) => t.join(" ")).join(" | ")}`);
      return Number(restartAt[2]) - Number(requestAt[3]);
    };
    const agentMs = windowMs(a);
    say(`moddable: encrypted agent update of ${size} B`);
    const encKey = generateDeviceKey("rsa3072").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const encMs = windowMs(await agent("moddable-agent-enc", size, false, { encryptFor: encKey }));

    say("moddable: memory (idle, raw, update)");
    const idleRun = await run(program, ["--idle", "--memory"], 60_000);
    const idle = lineJson<MemoryPeaks>(idleRun.lines, "@memory ")[0];
    if (idleRun.status !== 0 || !idle) throw new Error(`idle app on Moddable: status ${idleRun.status}: ${idleRun.lines.slice(-3).join(" | ")}`);
    const memPublished = publishRelease(lab, "moddable-raw-memory", memorySize);
    const rm = (await raw(memPublished.imageUrl, memPublished.image, true)).memory ?? EMPTY_PEAKS;
    const am = await agent("moddable-agent-memory", memorySize, true);
    const update = maxPeaks(am.memory);
    const em = maxPeaks((await agent("moddable-agent-enc-memory", memorySize, true, { encryptFor: encKey })).memory);

    let byInclude: ModdableRuntimeResult["memory"]["byInclude"];
    const tree = moddableTree(say);
    if (!("skip" in tree)) {
      say("moddable: memory by include (building the core-only program when needed)");
      const coreProgram = await buildCoreProgram(tree.root);
      const broker = await startBroker();
      try {
        const mqtt = { host: broker.host, port: broker.port };
        const full = await agent("moddable-full-memory", memorySize, true, { mqtt });
        const core = await agent("moddable-core-memory", memorySize, true, { program: coreProgram, mqtt });
        const own = (r: typeof full) => {
          const u = maxPeaks(r.memory);
          return { update: u, own: liveBytes(u) - liveBytes(rm), events: r.events };
        };
        byInclude = { core: own(core), full: own(full) };
      } finally {
        await broker.close();
      }
    }
    return {
      imageBytes: size,
      raw: { ms: r.ms, headersMs: r.headersMs, bytesPerMs: size / r.ms },
      agent: { ms: agentMs, bytesPerMs: size / agentMs, final: a.final },
      ratio: r.ms / agentMs,
      encrypted: { ms: encMs, ratio: agentMs / encMs, update: em, addedBytes: liveBytes(em) - liveBytes(update) },
      memory: {
        imageBytes: memorySize, idle, raw: rm, boots: am.memory, update,
        agentAboveIdle: liveBytes(update) - liveBytes(idle),
        rawAboveIdle: liveBytes(rm) - liveBytes(idle),
        ...(byInclude ? { byInclude } : {}),
      },
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
  } finally {
    await lab.close();
    rmSync(work, { recursive: true, force: true });
  }
}
