/*
 * Delta updates against full images, for real machine code: the patch as a share of the
 * image, bytes on the wire, and the modelled update time at 26 KB/s (ESP32 HTTPS OTA in
 * Espressif's measurement), next to esp_delta_ota's published 7-25 %. Each patch is made by
 * backend/delta and applied by the device's own applier (modules/delta), which must give
 * back the exact image; the applier's peak memory is its fixed buffers.
 *
 * Pairs: test/delta/vectors (three musl-static builds of a small tool, 30 KB) and
 * bench/delta-images (three builds of the XS engine's xsnap-worker, 1.7 MB: the new ones are
 * rebuilt from the base with detools' own patches and checked by SHA-256). READMEs there.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import { createPatch, type Compression } from "../backend/delta/create";
import { sha256 } from "../backend/crypto";
import { toHex, concatBytes } from "../modules/bytes";
import { PatchApplier } from "../modules/delta/patch";
import { WIRE_BYTES_PER_SECOND } from "../cli/delta";
import { deltaXsCost, type DeltaXsCost } from "./delta-xs";

/** esp_delta_ota's README: patch sizes for ordinary code changes run from 7 % to 25 % of the image. */
export const ESP_DELTA_OTA_SHARES = { low: 7, high: 25 } as const;
/** The goal for a one-module change. */
export const DELTA_GOAL_SHARE = 10;

export interface DeltaPair {
  name: string;
  change: "version string" | "one module";
  from: Uint8Array;
  to: Uint8Array;
}

export interface DeltaRow {
  pair: string;
  change: DeltaPair["change"];
  compression: Compression;
  imageBytes: number;
  patchBytes: number;
  /** patch / image, % */
  share: number;
  fullSeconds: number;
  deltaSeconds: number;
  createMs: number;
  applyMs: number;
  exact: boolean;
}

export interface DeltaResult {
  rows: DeltaRow[];
  /** The last one-module pair applied inside xsnap-worker (bench/delta-xs.ts). */
  xs?: DeltaXsCost;
  /** The applier's fixed buffers (output 4096 + base cache 512 + decode 256 + header 64 + window 256). */
  applierBufferBytes: number;
}

const ROOT = join(import.meta.dirname, "..");

function load(path: string): Uint8Array {
  const b = new Uint8Array(readFileSync(path));
  return path.endsWith(".br") ? new Uint8Array(brotliDecompressSync(b)) : b;
}

const XSNAP_SHA256: Record<string, string> = {
  a: "39161e72daa817d8c16c3d7e333ff6f8d6759e4b5584c00f059a8d5a5d28dfca",
  version: "cb74954653cc4e97e48007af329ef8e1e05a6d7eaaf5d0f15d36bef2a8ae322a",
  module: "5f6506c3877673beb12510bf0c9e83d870ad74fdb9caf9027eb525752a2c97b6",
};

/** A target rebuilt from `from` and a stored detools patch, checked against its known SHA-256. */
function rebuilt(from: Uint8Array, patch: Uint8Array, digest: string, what: string): Uint8Array {
  const parts: Uint8Array[] = [];
  const applier = new PatchApplier({ base: { size: from.length, read: (o, t) => t.set(from.subarray(o, o + t.length)) }, sink: { write: (d) => parts.push(d.slice()) }, maxOutput: 4 << 20 });
  applier.write(patch);
  applier.finish();
  const out = concatBytes(parts);
  if (toHex(sha256(out)) !== digest) throw new Error(`${what}: rebuilt image has the wrong SHA-256`);
  return out;
}

/** The pairs; `large` (default true) adds the 1.7 MB xsnap-worker builds. */
export function deltaPairs(o: { large?: boolean } = {}): DeltaPair[] {
  const v = join(ROOT, "test/delta/vectors");
  const base = load(join(v, "app-1.0.0.bin"));
  const pairs: DeltaPair[] = [
    { name: "vectortool (musl static, x86-64)", change: "version string", from: base, to: load(join(v, "app-1.0.1.bin")) },
    { name: "vectortool (musl static, x86-64)", change: "one module", from: base, to: load(join(v, "app-1.1.0.bin")) },
  ];
  const x = join(ROOT, "bench/delta-images");
  if (o.large !== false && existsSync(join(x, "xsnap-a.bin.br"))) {
    const a = load(join(x, "xsnap-a.bin.br"));
    if (toHex(sha256(a)) !== XSNAP_SHA256.a) throw new Error("xsnap-a.bin.br: wrong SHA-256");
    for (const [name, change] of [["version", "version string"], ["module", "one module"]] as const) {
      const to = rebuilt(a, load(join(x, `detools-a-${name}.patch`)), XSNAP_SHA256[name]!, name);
      pairs.push({ name: "xsnap-worker (XS engine, x86-64 -O3)", change, from: a, to });
    }
  }
  return pairs;
}

function applyTimed(from: Uint8Array, patch: Uint8Array, to: Uint8Array): { ms: number; exact: boolean } {
  let at = 0;
  let exact = true;
  const t0 = performance.now();
  const applier = new PatchApplier({
    base: { size: from.length, read: (o, t) => t.set(from.subarray(o, o + t.length)) },
    sink: {
      write: (d) => {
        for (let i = 0; i < d.length && exact; i++) if (d[i] !== to[at + i]) exact = false;
        at += d.length;
      },
    },
    maxOutput: to.length,
  });
  // as it arrives over HTTPS: 1,400-byte pieces
  for (let i = 0; i < patch.length; i += 1400) applier.write(patch.subarray(i, i + 1400));
  const n = applier.finish();
  return { ms: performance.now() - t0, exact: exact && n === to.length };
}

export async function deltaBench(o: { compressions?: Compression[]; large?: boolean; xs?: boolean } = {}): Promise<DeltaResult> {
  const rows: DeltaRow[] = [];
  let xsPair: { name: string; from: Uint8Array; to: Uint8Array; patch: Uint8Array } | undefined;
  for (const p of deltaPairs(o.large === undefined ? {} : { large: o.large })) {
    // none only where it is cheap: it is the image's size again (the diff's zeros go out as they are)
    const all: Compression[] = p.to.length < 1 << 20 ? ["heatshrink", "none"] : ["heatshrink"];
    for (const compression of o.compressions ?? all) {
      const t0 = performance.now();
      const { patch } = createPatch(p.from, p.to, { compression });
      const createMs = performance.now() - t0;
      if (p.change === "one module" && compression === "heatshrink") xsPair = { name: p.name, from: p.from, to: p.to, patch };
      const applied = applyTimed(p.from, patch, p.to);
      rows.push({
        pair: p.name,
        change: p.change,
        compression,
        imageBytes: p.to.length,
        patchBytes: patch.length,
        share: (patch.length / p.to.length) * 100,
        fullSeconds: p.to.length / WIRE_BYTES_PER_SECOND,
        deltaSeconds: patch.length / WIRE_BYTES_PER_SECOND,
        createMs,
        applyMs: applied.ms,
        exact: applied.exact,
      });
    }
  }
  const result: DeltaResult = { rows, applierBufferBytes: 4096 + 512 + 256 + 64 + 256 };
  if (o.xs !== false && xsPair) result.xs = await deltaXsCost(xsPair);
  return result;
}
