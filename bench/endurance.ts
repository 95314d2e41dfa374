/*
 * Endurance: N consecutive update cycles on ONE simulated device (Node engine, small images,
 * seeded), each a new release at the same manifest URL followed by a power cycle, with random
 * faults: a power cut at a random flash operation of the cycle, a link drop at a random byte of
 * the image, and bad releases mixed in (self-test fails, crash at boot, hang, a corrupt manifest
 * signature, a tampered image). Between cycles, with the firmware off, the bench plays the
 * broker: it takes every pending outbox event as delivered and acks it (what the reporter does
 * on PUBACK).
 *
 * Invariants at the end (and along the way): a valid firmware runs (never bricked), the anti-
 * rollback floor (NVS "xsota/floor" and the eFuse) never went down, every seq the outbox ever
 * numbered was delivered (none lost, no OUTBOX_FULL), and NVS live usage did not grow.
 */
import { Lab, FACTORY, type ReleaseSpec } from "../host-sim/lab/lab";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import type { Behavior } from "../host-sim/chip/device";
import { Outbox } from "../modules/outbox";
import { JournalStore } from "../modules/journal";
import { DEFAULTS } from "../modules/config";
import { DOMAINS } from "../modules/nvs-domains";

export interface EnduranceResult {
  cycles: number;
  seed: number;
  realSeconds: number;
  faults: { powerCuts: number; powerCutsFired: number; linkDrops: number; badReleases: number };
  outcomes: Record<string, number>;
  boots: number;
  finalVersion: string | null;
  bricked: boolean;
  floor: { final: number; efuse: number; wentDown: number };
  events: { numbered: number; delivered: number; lost: number; outboxFull: number };
  nvs: { liveBytesFirst: number; liveBytesMax: number; liveBytesEnd: number; keysFirst: number; keysEnd: number; usedBytesMax: number; compactions: number };
  ok: { valid: boolean; floor: boolean; events: boolean; nvs: boolean };
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

let runs = 0;

export async function endurance(options: { cycles?: number; seed?: number; imageBytes?: number; lab?: Lab; progress?: (s: string) => void } = {}): Promise<EnduranceResult> {
  const cycles = options.cycles ?? 1000;
  const seed = options.seed ?? 1;
  const size = options.imageBytes ?? 16 * 1024;
  const rnd = prng(seed);
  const lab = options.lab ?? (await Lab.create());
  const engine = createNodeEngine();
  const t0 = performance.now();
  const dir = `bench-endurance-${seed}-${++runs}`;
  const faults = { powerCuts: 0, powerCutsFired: 0, linkDrops: 0, badReleases: 0 };
  const outcomes: Record<string, number> = {};
  const delivered = new Set<number>();
  let outboxFull = 0;
  let floorPrev = 0, efusePrev = 0, wentDown = 0;
  let liveFirst = -1, keysFirst = 0, liveMax = 0, usedMax = 0;
  const first = lab.publish(dir, { image: { ...FACTORY } });
  const chip = lab.chip(FACTORY);
  const store = chip.store();
  const config = lab.config(first.manifestUrl, { download: { ...DEFAULTS.download, journalEveryBytes: 4096 } });
  const device = lab.device(engine, chip, config, { maxBoots: Number.MAX_SAFE_INTEGER });
  const drive = { maxVirtualMs: 24 * 3600_000, maxRealMs: 60_000, quietMs: 100 };
  const deliver = () => {
    const box = new Outbox(store, { capacity: DEFAULTS.outboxCapacity });
    let top = 0;
    for (const e of box.pending()) {
      if (e.code === "OUTBOX_FULL") outboxFull++;
      else delivered.add(e.seq);
      top = Math.max(top, e.seq);
    }
    if (top) box.ackUpTo(top);
  };
  try {
    await device.run((d) => d.idle, drive);
    let secure = 1;
    for (let i = 1; i <= cycles; i++) {
      // Release i: mostly good, some bad; secure_version rises now and then (never below the floor).
      if (i % 97 === 0) secure++;
      const r = rnd();
      const behavior: Behavior = r < 0.06 ? "fail-diagnostics" : r < 0.1 ? "crash-on-boot" : r < 0.12 ? "hang" : "healthy";
      const spec: ReleaseSpec = { image: { version: `1.${i}.0`, secureVersion: secure, size, behavior } };
      const r2 = rnd();
      if (r2 < 0.04) spec.signer = "corrupt";
      else if (r2 < 0.08) spec.serve = (b) => { const c = b.slice(); c[c.length - 7] ^= 1; return c; };
      if (behavior !== "healthy" || spec.signer || spec.serve) faults.badReleases++;
      const rel = lab.publish(dir, spec);
      const imagePath = new URL(rel.imageUrl).pathname;
      if (rnd() < 0.2) {
        faults.linkDrops++;
        lab.setFault(imagePath, { kind: "cut-at", at: Math.floor(rnd() * rel.image.length), times: 1 });
      } else lab.setFault(imagePath, null);
      device.powerCycle();
      deliver();
      const cutsBefore = device.counters.powerCuts;
      if (rnd() < 0.25) {
        faults.powerCuts++;
        device.powerCutAt(1 + Math.floor(rnd() * 40));
      }
      await device.run((d) => d.idle, drive);
      chip.flash.cancelPowerCut();
      faults.powerCutsFired += device.counters.powerCuts - cutsBefore;
      if (device.bricked) break;
      const last = [...device.events].reverse().find((e) => e.to === `1.${i}.0` && ["committed", "rolled-back", "failed", "refused"].includes(e.state));
      const k = last ? `${last.state}${last.code ? ` ${last.code}` : ""}` : "no result";
      outcomes[k] = (outcomes[k] ?? 0) + 1;
      const floor = new JournalStore(store).floor();
      if (floor < floorPrev || chip.efuseSecureVersion < efusePrev) wentDown++;
      floorPrev = floor;
      efusePrev = chip.efuseSecureVersion;
      const u = store.usage();
      if (liveFirst < 0 && i >= Math.min(10, cycles)) { liveFirst = u.liveBytes; keysFirst = u.keys; }
      liveMax = Math.max(liveMax, u.liveBytes);
      usedMax = Math.max(usedMax, u.usedBytes);
      if (i % 100 === 0) options.progress?.(`endurance ${i}/${cycles}: running ${device.running?.version}, floor ${floor}, NVS live ${u.liveBytes} B`);
    }
    device.powerCycle();
    deliver();
    await device.run((d) => d.idle, drive);
  } finally {
    await device.stop();
    await engine.close();
    if (!options.lab) await lab.close();
  }
  const nextSeq = store.get(DOMAINS.outbox, "next");
  const numbered = (typeof nextSeq === "number" ? nextSeq : 1) - 1;
  const box = new Outbox(store, { capacity: DEFAULTS.outboxCapacity });
  for (const e of box.pending()) if (e.code !== "OUTBOX_FULL") delivered.add(e.seq);
  let lost = 0;
  for (let s = 1; s <= numbered; s++) if (!delivered.has(s)) lost++;
  const u = store.usage();
  const finalFloor = new JournalStore(store).floor();
  const result: EnduranceResult = {
    cycles,
    seed,
    realSeconds: (performance.now() - t0) / 1000,
    faults,
    outcomes,
    boots: device.counters.boots,
    finalVersion: device.running?.version ?? null,
    bricked: device.bricked !== undefined,
    floor: { final: finalFloor, efuse: chip.efuseSecureVersion, wentDown },
    events: { numbered, delivered: delivered.size, lost, outboxFull },
    nvs: { liveBytesFirst: liveFirst, liveBytesMax: liveMax, liveBytesEnd: u.liveBytes, keysFirst, keysEnd: u.keys, usedBytesMax: usedMax, compactions: u.compactions },
    ok: { valid: false, floor: wentDown === 0, events: lost === 0 && outboxFull === 0, nvs: false },
  };
  result.ok.valid = !result.bricked && result.finalVersion !== null;
  // No growth: live data at the end within one journal/outbox record of the early figure.
  result.ok.nvs = u.keys <= keysFirst + 1 && u.liveBytes <= liveFirst + 512;
  return result;
}
