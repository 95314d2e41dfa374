/*
 * Pipeline throughput: a full update (default 1.5 MB, the whole slot) by the agent over loopback
 * HTTPS into the simulated flash, in the Node and the XS engine, against the raw limit measured
 * in the same run and from the same update host: a bare HTTPS GET hashed with SHA-256 into a
 * preallocated buffer. Rounds alternate raw / node / xs so machine noise hits all three alike;
 * the figure is the median of each.
 *
 * The agent's window runs from its image GET to system.restart() (download, hash, write, read-
 * back, image validation, otadata switch): everything between "the bytes are there" and "the
 * new image will boot". Port time inside it is measured on the Node side (bench/probe.ts).
 */
import { request } from "node:https";
import { createHash } from "node:crypto";
import { Lab, FACTORY, type Published } from "../host-sim/lab/lab";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import { createXsEngine, type MeterTotals } from "../host-sim/engines/xs/engine";
import type { BridgeStats } from "../host-sim/engines/xs/bridge";
import type { Engine } from "../host-sim/engines/engine";
import { DEFAULTS } from "../modules/config";
import { contextFor } from "../host-sim/engines/ports/http";
import { probeEngine, portMs, type PortProfile } from "./probe";
import { xorBytes } from "../modules/image";

export const FULL_IMAGE = 1536 * 1024;

/**
 * GET `url` over HTTPS (pinned CA, Connection: close, as the device does), SHA-256 into a buffer.
 * Resolves real ms. The CA's TLS context is made once, as the simulated device's HTTP port does.
 */
export function rawDownload(url: string, ca: string, size: number): Promise<{ ms: number; headersMs: number; bytes: number; sha256: string; body: Uint8Array }> {
  const secureContext = contextFor(ca);
  return new Promise((resolve, reject) => {
    const buf = new Uint8Array(size);
    const hash = createHash("sha256");
    let n = 0;
    const t0 = performance.now();
    const options = { secureContext, rejectUnauthorized: true, agent: false, headers: { connection: "close" } };
    const req = request(url, options, (res) => {
      const headersMs = performance.now() - t0;
      if (res.statusCode !== 200) return reject(new Error(`raw download: status ${res.statusCode}`));
      res.on("data", (chunk: Buffer) => {
        const take = Math.min(chunk.length, size - n);
        buf.set(chunk.subarray(0, take), n);
        hash.update(chunk);
        n += take;
      });
      res.on("end", () => resolve({ ms: performance.now() - t0, headersMs, bytes: n, sha256: hash.digest("hex"), body: buf }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The least a read-back verification can cost: `image` read in 4 KB blocks into a scratch buffer
 * (a flash read), each block SHA-256 hashed and XOR-checksummed (modules/image.ts's xorBytes), as
 * verifySlot must and as ESP-IDF's esp_image_verify does after every OTA write. No flash, no
 * ports, no parsing. Returns real ms (and the checksum, so the loop is not dead code).
 */
export function readbackPass(image: Uint8Array): { ms: number; checksum: number } {
  const scratch = new Uint8Array(4096);
  const t0 = performance.now();
  const hash = createHash("sha256");
  let x = 0;
  for (let off = 0; off < image.length; off += 4096) {
    const n = Math.min(4096, image.length - off);
    const view = scratch.subarray(0, n);
    view.set(image.subarray(off, off + n));
    hash.update(view);
    x = xorBytes(view, n & ~3, x);
  }
  hash.digest();
  return { ms: performance.now() - t0, checksum: x };
}

export interface AgentRun {
  engine: "node" | "xs";
  /** Image GET -> restart(), real ms. */
  ms: number;
  final: string | null;
  /** Port calls and real ms inside them (Node side) in the update boot. */
  ports: PortProfile;
  portMs: number;
  /** XS only: meter and bridge of the update boot. */
  meter?: MeterTotals;
  bridge?: BridgeStats;
}

/** Publish a release of `size` bytes for one agent run. */
export function publishRelease(lab: Lab, dir: string, size: number): Published {
  return lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1, size } });
}

/**
 * One full update by the agent in `engine` (fresh chip, the factory image in app0), from
 * `release` (published with publishRelease) or a new release published under `dir`. With
 * `detail` false only the marks are taken (no per-call port timers in the measured window).
 * `config` goes over the lab's device configuration (e.g. an encrypted release's device key).
 */
export async function agentUpdate(lab: Lab, engine: Engine, dir: string | Published, size: number, boots?: Array<{ meter: MeterTotals; bridge: BridgeStats }>, detail = true, config: Record<string, unknown> = {}): Promise<AgentRun> {
  const release = typeof dir === "string" ? publishRelease(lab, dir, size) : dir;
  const probe = probeEngine(engine, undefined, detail);
  const chip = lab.chip(FACTORY);
  const device = lab.device(probe, chip, lab.config(release.manifestUrl, { download: { ...DEFAULTS.download }, ...config }));
  const before = boots?.length ?? 0;
  try {
    await device.run(() => probe.profiles[0]?.restartAt !== undefined, { maxVirtualMs: 3600_000, maxRealMs: 120_000, quietMs: 250 });
  } finally {
    await device.stop();
    // Its sector buffers serve the next run's chip: as the raw side's buffer is allocated before
    // its window opens, no run pays for allocating the simulated flash it writes into.
    chip.flash.dispose();
  }
  const prof = probe.profiles[0]!;
  if (prof.imageRequestAt === undefined || prof.restartAt === undefined) throw new Error(`agent update in ${engine.name}: no image request or no restart`);
  const final = [...device.events].reverse().find((e) => e.state !== "downloading")?.state ?? null;
  const boot = boots?.[before];
  return {
    engine: engine.name,
    ms: prof.restartAt - prof.imageRequestAt,
    final,
    ports: prof,
    portMs: portMs(prof),
    ...(boot ? { meter: boot.meter, bridge: boot.bridge } : {}),
  };
}

export interface ThroughputResult {
  imageBytes: number;
  rounds: number;
  rawMs: number[];
  nodeMs: number[];
  xsMs: number[];
  /** Medians over the rounds: TLS+headers, body (raw: to the end; agent: to "verifying"), verify+install (agent). */
  rawPhases: { headers: number; body: number };
  /**
   * The design's floor: each round's raw GET plus one read-back pass over the bytes it got
   * (readbackPass), medians; `ratio` = the median of floor / agent per round, `limitRatio` the
   * median of raw / floor. An agent that verifies what is in flash cannot beat it.
   */
  floor: { medianMs: number; readbackMs: number; ratio: number; limitRatio: number };
  nodePhases: { headers: number; body: number; verify: number };
  raw: { medianMs: number; mbPerS: number };
  /**
   * ratio = the median over the rounds of raw / agent in the same round, run back to back (the
   * ratio of the two medians lets the machine's load drift between rounds into the figure: it
   * swung from 0.61 to 0.82 between runs where this stays within 0.03); ratioBest = fastest raw
   * / fastest agent (noise only adds time).
   */
  node: { medianMs: number; mbPerS: number; ratio: number; ratioBest: number; run: AgentRun };
  xs: { medianMs: number; mbPerS: number; ratio: number; ratioBest: number; run: AgentRun } | null;
}

/** An agent run's phases from its marks: image request -> status, -> "verifying", -> restart. */
export function agentPhases(marks: Array<[string, number]>): { headers: number; body: number; verify: number } {
  const at = (n: string) => marks.find((m) => m[0] === n)?.[1] ?? NaN;
  return { headers: at("status") - at("request"), body: at("verifying") - at("status"), verify: at("restart") - at("verifying") };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** Median of a[i] / b[i] over the rounds b has (a round's two sides ran back to back). */
const pairedRatio = (a: number[], b: number[]) => median(b.map((x, i) => a[i]! / x));
const mbps = (bytes: number, ms: number) => bytes / (1024 * 1024) / (ms / 1000);

let runs = 0;

/**
 * Rounds of raw / node / xs side by side: `rounds` with all three, then raw / node only up to
 * `nodeRounds` (a Node round takes milliseconds, an XS one a fifth of a second: more Node rounds
 * make its median steadier at little cost).
 */
export async function throughput(options: { size?: number; rounds?: number; nodeRounds?: number; xs?: boolean; lab?: Lab; progress?: (s: string) => void } = {}): Promise<ThroughputResult> {
  const size = options.size ?? FULL_IMAGE;
  const rounds = options.rounds ?? 3;
  const nodeRounds = Math.max(rounds, options.nodeRounds ?? rounds);
  const lab = options.lab ?? (await Lab.create());
  const node = createNodeEngine();
  const boots: Array<{ meter: MeterTotals; bridge: BridgeStats }> = [];
  const xs = options.xs === false ? undefined : createXsEngine({ onStop: (meter, bridge) => boots.push({ meter: { ...meter }, bridge: { ...bridge } }) });
  const rawMs: number[] = [], nodeMs: number[] = [], xsMs: number[] = [], floorMs: number[] = [], readbackMs: number[] = [];
  const rawHeaders: number[] = [], rawBody: number[] = [], nodeHeaders: number[] = [], nodeBody: number[] = [], nodeVerify: number[] = [];
  let lastNode: AgentRun | undefined, lastXs: AgentRun | undefined;
  try {
    const warm = publishRelease(lab, `bench-warm-${++runs}`, size);
    // Warm-up (TLS, JIT, XS snapshot) outside the figures.
    await rawDownload(warm.imageUrl, lab.ca.caCertPem, warm.image.length);
    await agentUpdate(lab, node, warm, size);
    if (xs) await agentUpdate(lab, xs, warm, size, boots);
    for (let r = 0; r < nodeRounds; r++) {
      // Every run downloads a release published for it, so no run finds its image in a cache the
      // others filled. One unmeasured GET first, so neither measured side is the path's first
      // fetch (the host takes a route's ETag when it is set; a file's on its first read).
      const release = publishRelease(lab, `bench-${runs}-${r}`, size);
      await rawDownload(release.imageUrl, lab.ca.caCertPem, release.image.length);
      const raw = await rawDownload(release.imageUrl, lab.ca.caCertPem, release.image.length);
      if (raw.bytes !== release.image.length || raw.sha256 !== createHash("sha256").update(release.image).digest("hex")) throw new Error("raw download: short or wrong bytes");
      rawMs.push(raw.ms);
      const readback = readbackPass(raw.body);
      readbackMs.push(readback.ms);
      floorMs.push(raw.ms + readback.ms);
      rawHeaders.push(raw.headersMs);
      rawBody.push(raw.ms - raw.headersMs);
      const n = await agentUpdate(lab, node, release, size, undefined, false);
      nodeMs.push(n.ms);
      const ph = agentPhases(n.ports.marks);
      nodeHeaders.push(ph.headers);
      nodeBody.push(ph.body);
      nodeVerify.push(ph.verify);
      let x: AgentRun | undefined;
      if (xs && r < rounds) {
        x = await agentUpdate(lab, xs, release, size, boots, false);
        xsMs.push(x.ms);
      }
      options.progress?.(`throughput round ${r + 1}/${nodeRounds}: raw ${raw.ms.toFixed(0)} ms, node ${n.ms.toFixed(0)} ms${x ? `, xs ${x.ms.toFixed(0)} ms` : ""}`);
    }
    // One more run per engine with every port call counted and timed: where the time goes.
    // Outside the figures, since the timers cost time of their own.
    lastNode = await agentUpdate(lab, node, warm, size);
    if (xs) lastXs = await agentUpdate(lab, xs, warm, size, boots);
  } finally {
    await node.close();
    if (xs) await xs.close();
    if (!options.lab) await lab.close();
  }
  const imageBytes = size;
  const rawMed = median(rawMs);
  const nodeMed = median(nodeMs);
  const xsMed = xsMs.length ? median(xsMs) : 0;
  return {
    imageBytes,
    rounds,
    rawMs, nodeMs, xsMs,
    rawPhases: { headers: median(rawHeaders), body: median(rawBody) },
    floor: { medianMs: median(floorMs), readbackMs: median(readbackMs), ratio: pairedRatio(floorMs, nodeMs), limitRatio: pairedRatio(rawMs, floorMs) },
    nodePhases: { headers: median(nodeHeaders), body: median(nodeBody), verify: median(nodeVerify) },
    raw: { medianMs: rawMed, mbPerS: mbps(imageBytes, rawMed) },
    node: { medianMs: nodeMed, mbPerS: mbps(imageBytes, nodeMed), ratio: pairedRatio(rawMs, nodeMs), ratioBest: Math.min(...rawMs) / Math.min(...nodeMs), run: lastNode! },
    xs: lastXs ? { medianMs: xsMed, mbPerS: mbps(imageBytes, xsMed), ratio: pairedRatio(rawMs, xsMs), ratioBest: Math.min(...rawMs) / Math.min(...xsMs), run: lastXs } : null,
  };
}
