import { PatchApplier, type DeltaBase, type PatchApplierOptions } from "../../modules/delta/patch";
import { concatBytes } from "../../modules/bytes";

/** xorshift32: the same bytes on every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Something shaped like machine code: repeated instruction-like words, tables, 0xFF padding. */
export function firmwareLike(size: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(size);
  const words = Array.from({ length: 64 }, () => r());
  for (let i = 0; i + 4 <= size; i += 4) {
    const w = r() % 4 === 0 ? r() : words[r() % 64]! ^ (i >>> 6);
    b[i] = w & 0xff;
    b[i + 1] = (w >>> 8) & 0xff;
    b[i + 2] = (w >>> 16) & 0xff;
    b[i + 3] = w >>> 24;
  }
  b.fill(0xff, Math.floor(size * 0.9));
  return b;
}

/** `base` with an inserted block, a deleted block, a few flipped bytes and shifted addresses. */
export function edited(base: Uint8Array, seed: number): Uint8Array {
  const r = rng(seed);
  const at = Math.floor(base.length / 3);
  const insert = new Uint8Array(97).map(() => r() & 0xff);
  const cut = Math.floor((base.length * 2) / 3);
  const out = concatBytes([base.subarray(0, at), insert, base.subarray(at, cut), base.subarray(cut + 41)]);
  for (let k = 0; k < 20; k++) out[r() % out.length] ^= 1 << (r() % 8);
  for (let i = at + 200; i + 4 <= Math.min(out.length, at + 2200); i += 16) out[i] = (out[i]! + 4) & 0xff;
  return out;
}

export function memoryBase(bytes: Uint8Array): DeltaBase & { reads: number } {
  return {
    size: bytes.length,
    reads: 0,
    read(offset, target) {
      if (offset < 0 || offset + target.length > bytes.length) throw new RangeError(`base read ${offset}+${target.length}`);
      this.reads++;
      target.set(bytes.subarray(offset, offset + target.length));
    },
  };
}

/** Apply `patch` fed in pieces of `step` bytes (or the sizes `steps` cycles through). */
export function applyPatch(base: Uint8Array, patch: Uint8Array, o: { step?: number | number[]; maxOutput?: number } & Partial<PatchApplierOptions> = {}): { output: Uint8Array; applier: PatchApplier } {
  const parts: Uint8Array[] = [];
  const applier = new PatchApplier({
    base: o.base ?? memoryBase(base),
    sink: { write: (d) => parts.push(d.slice()) },
    maxOutput: o.maxOutput ?? 1 << 24,
    ...(o.scratch ? { scratch: o.scratch } : {}),
    ...(o.container ? { container: o.container } : {}),
  });
  const steps = Array.isArray(o.step) ? o.step : [o.step ?? patch.length];
  for (let at = 0, k = 0; at < patch.length; k++) {
    const n = Math.max(1, steps[k % steps.length]!);
    applier.write(patch.subarray(at, at + n));
    at += n;
  }
  const size = applier.finish();
  const output = concatBytes(parts);
  if (size !== output.length) throw new Error(`finish said ${size}, the sink got ${output.length}`);
  return { output, applier };
}
