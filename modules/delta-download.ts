/*
 * A delta update on the device: a detools sequential patch is streamed by the same Downloader
 * as a full image (https: only, pinned CA, stall and rate timers, retries with backoff, the
 * same codes), its bytes go into a PatchApplier (modules/delta/) that reads the base from the
 * running slot, and the applier's output (4 KB pieces of its own buffer) goes, in order, into
 * the erase-ahead UpdateSlot writer (modules/install.ts) and a SHA-256 of the output. The first output block is checked
 * (magic, chip id, project) before anything is written, as a full image's first block is; the
 * caller then runs the full verification (modules/verify.ts) on what is in the slot.
 *
 * Resume: every attempt, and every boot after a cut, applies the patch from its byte 0 and
 * rewrites the slot from offset 0 (the decompressor's and the applier's state is not
 * journaled, so there is nothing to resume from). A cut therefore costs at most the patch
 * bytes again (and the slot writes up to where it got), never the full image. Once the output
 * is complete the journal says so (phase verifying, written = size): a reboot after that goes
 * straight to verification without fetching the patch again.
 *
 * Memory on this path, beyond the Downloader's 4 KB body buffer and the full path's state: the
 * applier's fixed buffers (about 5.2 KB: 4 KB output, 512-byte base cache, 256-byte decode
 * buffer, 64-byte header, the 256-byte heatshrink window; modules/delta/README.md) and one
 * more SHA-256 context. None of it grows with the image or the patch.
 */
import type { FlashPort, FlashPartition, CryptoPort, Sha256 } from "./ports";
import type { SlotWriter } from "./download";
import type { UpdateSlot, SlotState } from "./install";
import { OtaError } from "./errors";
import { toHex } from "./bytes";
import { PatchApplier, type DeltaBase } from "./delta/patch";
import type { DeltaFeature, PatchSlotOptions as FeaturePatchOptions, PatchWriter } from "./features";

/** SHA-256 (hex) of the first `size` bytes of `part`, read through `scratch`. Throws FLASH_*. */
export function sha256Prefix(part: FlashPartition, size: number, crypto: CryptoPort, scratch: Uint8Array): string {
  if (size > part.byteLength) throw new RangeError(`${size} bytes > partition ${part.byteLength}`);
  const h = crypto.sha256();
  for (let off = 0; off < size; off += scratch.byteLength) {
    const n = Math.min(scratch.byteLength, size - off);
    const view = n === scratch.byteLength ? scratch : scratch.subarray(0, n);
    part.read(off, view);
    h.write(view);
  }
  return toHex(h.close());
}

/** The running slot as the patch's base, bounded to the base's size (the applier refuses reads past it: DELTA_BASE). */
export function runningBase(flash: FlashPort, size: number): DeltaBase {
  const part = flash.open("running");
  if (size > part.byteLength) throw new OtaError("DELTA_BASE", `base of ${size} bytes > running slot ${part.byteLength}`);
  return { size, read: (offset, target) => part.read(offset, target) };
}

export interface PatchSlotOptions {
  slot: UpdateSlot;
  /** The release's image size (the manifest's): the output must be exactly this long. */
  imageSize: number;
  base: DeltaBase;
  crypto: CryptoPort;
  /** Check the first output block before it is written (checkImageStart); throws IMAGE_* codes. */
  checkStart(first: Uint8Array): void;
}

/**
 * The Downloader's slot for a patch: body bytes are patch bytes, fed to a fresh PatchApplier on
 * every attempt; `written` stays 0 until every patch byte is in (then the Downloader completes
 * the slot, as it does a full image), so a failed attempt restarts the patch from byte 0 (no
 * Range request) and the slot from offset 0.
 */
export class PatchSlot implements SlotWriter, PatchWriter {
  private applier: PatchApplier | undefined;
  private out = 0;
  private fed = 0;
  private patchSize = 0;
  private done = false;
  private readonly sha: Sha256;
  private digest = "";

  constructor(private readonly o: PatchSlotOptions) {
    this.sha = o.crypto.sha256();
  }

  /** Patch bytes taken: 0 until the whole patch is in (nothing short of it is a resume point), then its size. */
  get written(): number {
    return this.done || (this.applier !== undefined && this.fed === this.patchSize) ? this.patchSize : 0;
  }

  get state(): SlotState {
    return this.done ? "written" : this.applier ? "writing" : "idle";
  }

  /** Output bytes written to the slot in this attempt. */
  get output(): number {
    return this.out;
  }

  /** SHA-256 (hex) of the output, once complete (else ""). */
  get outputSha256(): string {
    return this.digest;
  }

  /** Start applying a patch of `patchSize` bytes from its byte 0. Throws IMAGE_TOO_LARGE, OTADATA_STATE. */
  begin(patchSize: number, from = 0): void {
    if (from !== 0) throw new RangeError("a patch is applied from its byte 0");
    this.o.slot.begin(this.o.imageSize, 0);
    this.patchSize = patchSize;
    this.out = 0;
    this.fed = 0;
    this.done = false;
    this.digest = "";
    this.sha.reset();
    this.applier = new PatchApplier({ base: this.o.base, sink: { write: (data) => this.push(data) }, maxOutput: this.o.imageSize });
  }

  /** Patch bytes in order. Throws DELTA_*, IMAGE_* (first block), FLASH_* from the slot. */
  write(chunk: Uint8Array): void {
    if (!this.applier) throw new OtaError("OTADATA_STATE", "patch write before begin");
    this.applier.write(chunk);
    this.fed += chunk.byteLength;
  }

  /** The last patch byte is in. Throws DELTA_TRUNCATED, DOWNLOAD_SIZE (output shorter than the image), FLASH_*. */
  complete(): void {
    if (!this.applier) throw new OtaError("OTADATA_STATE", "patch complete before begin");
    const size = this.applier.finish();
    this.applier = undefined;
    if (size !== this.o.imageSize || this.out !== this.o.imageSize) throw new OtaError("DOWNLOAD_SIZE", `patch made ${this.out} bytes, the manifest says ${this.o.imageSize}`);
    this.o.slot.complete();
    this.digest = toHex(this.sha.close());
    this.done = true;
  }

  adopt(): void {
    throw new OtaError("OTADATA_STATE", "a patch is never adopted: it is applied again");
  }

  /** Patch bytes are not kept: nothing before the resume point (always 0) is ever read back. */
  read(offset: number, target: Uint8Array): void {
    if (target.byteLength > 0) throw new RangeError(`patch bytes at ${offset} are not kept`);
  }

  private push(data: Uint8Array): void {
    if (this.out + data.byteLength > this.o.imageSize) throw new OtaError("DELTA_OVERRUN", `output passes the manifest's ${this.o.imageSize} bytes`);
    if (this.out === 0) this.o.checkStart(data);
    this.o.slot.write(data);
    this.sha.write(data);
    this.out += data.byteLength;
  }
}

/** The delta feature as the agent takes it (AppExtra.features; modules/features.ts). A class: its methods stay in flash. */
class Delta implements DeltaFeature {
  sha256Prefix(part: FlashPartition, size: number, crypto: CryptoPort, scratch: Uint8Array): string {
    return sha256Prefix(part, size, crypto, scratch);
  }
  patchSlot(o: FeaturePatchOptions): PatchWriter {
    return new PatchSlot({ slot: o.slot, imageSize: o.imageSize, base: runningBase(o.flash, o.baseSize), crypto: o.crypto, checkStart: o.checkStart });
  }
}

export const DELTA: DeltaFeature = Object.freeze(new Delta());
