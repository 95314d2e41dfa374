/*
 * Delta updates against full images, for real machine code: the patch as a share of the
 * image, bytes on the wire, and the modelled update time at 26 KB/s (ESP32 HTTPS OTA in
 * Espressif's measurement), next to esp_delta_ota's published 7-25 %. Each patch is made by
 * host-sim/delta and applied by the device's own applier (modules/delta), which must give
 * back the exact image; the applier's peak memory is its fixed buffers.
 *
 * Pairs: test/delta/vectors (three musl-static builds of a small tool, README there), and
 * bench/delta-images when present (two builds of the XS engine's xsnap-worker, README there).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import { createPatch, type Compression } from "../host-sim/delta/create";
import { PatchApplier } from "../modules/delta/patch";
import { WIRE_BYTES_PER_SECOND } from "../host-sim/cli/delta";

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
  /** The applier's fixed buffers (output 4096 + base cache 512 + decode 256 + header 64 + window 256). */
  applierBufferBytes: number;
}

const ROOT = join(import.meta.dirname, "..");

function load(path: string): Uint8Array {
  const b = new Uint8Array(readFileSync(path));
  return path.endsWith(".br") ? new Uint8Array(brotliDecompressSync(b)) : b;
}

export function deltaPairs(): DeltaPair[] {
  const v = join(ROOT, "test/delta/vectors");
  const base = load(join(v, "app-1.0.0.bin"));
  const pairs: DeltaPair[] = [
    { name: "vectortool (musl static, x86-64)", change: "version string", from: base, to: load(join(v, "app-1.0.1.bin")) },
    { name: "vectortool (musl static, x86-64)", change: "one module", from: base, to: load(join(v, "app-1.1.0.bin")) },
  ];
  const x = join(ROOT, "bench/delta-images");
  if (existsSync(join(x, "xsnap-a.bin.br"))) {
    const a = load(join(x, "xsnap-a.bin.br"));
    for (const [file, change] of [["xsnap-version.bin.br", "version string"], ["xsnap-module.bin.br", "one module"]] as const) {
      if (existsSync(join(x, file))) pairs.push({ name: "xsnap-worker (XS engine, x86-64 -O3)", change, from: a, to: load(join(x, file)) });
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

export function deltaBench(o: { compressions?: Compression[] } = {}): DeltaResult {
  const rows: DeltaRow[] = [];
  for (const p of deltaPairs()) {
    for (const compression of o.compressions ?? (["heatshrink", "none"] as Compression[])) {
      const t0 = performance.now();
      const { patch } = createPatch(p.from, p.to, { compression });
      const createMs = performance.now() - t0;
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
  return { rows, applierBufferBytes: 4096 + 512 + 256 + 64 + 256 };
}
