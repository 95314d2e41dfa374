/*
 * A pre-encrypted release on the device (issue 31): the Downloader streams the esp_encrypted_img
 * file as published (its SHA-256 is the manifest's `sha256`), its bytes go through the one-pass
 * decryption of modules/enc-stream.ts, and the plain bytes go, in order, into the erase-ahead
 * UpdateSlot writer (modules/install.ts): no second copy of the image, in RAM or in flash. The
 * first plain bytes are checked (magic, chip id, project) before anything is written, as a full
 * image's first block is. At the last byte the size and the GCM tag are checked (ENC_TRUNCATED,
 * ENC_TAG), then the SHA-256 of the plain bytes against the manifest's (DOWNLOAD_HASH); the caller then verifies the plain image in the slot exactly as a plain release
 * (modules/verify.ts: validation, signature block, the manifest's plainSize and plainSha256).
 *
 * Resume: an attempt cut short, or a reboot, starts the file again from byte 0 (README,
 * "Pre-encrypted images": why, measured). `written` stays 0 until every byte is in, as a patch's
 * does (modules/delta-download.ts), so the Downloader never asks for a Range.
 *
 * Memory beyond the plain path: the 512-byte header, one more SHA-256 context, the GCM state of
 * the cipher port and its output for one 4 KB chunk; nothing grows with the image.
 */
import type { CryptoPort, EncCipherPort, Sha256 } from "./ports";
import { toHex } from "./bytes";
import type { SlotWriter } from "./download";
import type { UpdateSlot, SlotState } from "./install";
import { OtaError } from "./errors";
import { EncStream } from "./enc-stream";
import { ENC_HEADER_SIZE } from "./enc-image";
import { openGcmKey, type DeviceKey } from "./enc-key";

export interface EncSlotOptions {
  slot: UpdateSlot;
  /** The manifest's encryption.plainSize and plainSha256 (hex). */
  plainSize: number;
  plainSha256: string;
  key: DeviceKey;
  crypto: CryptoPort;
  cipher: EncCipherPort;
  /** Check the first plain bytes before they are written (checkImageStart); throws IMAGE_* codes. */
  checkStart(first: Uint8Array): void;
}

export class EncSlot implements SlotWriter {
  private stream: EncStream | undefined;
  private fileSize = 0;
  private fed = 0;
  private out = 0;
  private done = false;
  /** The plain bytes as they are written: a manifest whose plainSha256 is not theirs is DOWNLOAD_HASH, a slot that then reads back otherwise FLASH_READBACK (modules/verify.ts). */
  private readonly sha: Sha256;

  constructor(private readonly o: EncSlotOptions) {
    this.sha = o.crypto.sha256();
  }

  /** File bytes taken: 0 until every byte is in (nothing short of it is a resume point), then the file's size. */
  get written(): number {
    return this.done || (this.stream !== undefined && this.fed === this.fileSize) ? this.fileSize : 0;
  }

  get state(): SlotState {
    return this.done ? "written" : this.stream ? "writing" : "idle";
  }

  /** Plain bytes written to the slot in this attempt. */
  get output(): number {
    return this.out;
  }

  /** Start the file of `fileSize` bytes from its byte 0. Throws IMAGE_TOO_LARGE, OTADATA_STATE. */
  begin(fileSize: number, from = 0): void {
    if (from !== 0) throw new RangeError("an encrypted image is taken from its byte 0");
    if (fileSize !== this.o.plainSize + ENC_HEADER_SIZE) throw new OtaError("DOWNLOAD_SIZE", `file of ${fileSize} bytes for an image of ${this.o.plainSize}`);
    const { slot, key, crypto, cipher } = this.o;
    slot.begin(this.o.plainSize, 0);
    this.fileSize = fileSize;
    this.fed = 0;
    this.out = 0;
    this.done = false;
    this.sha.reset();
    this.stream = new EncStream({
      openKey: (h) => openGcmKey(h, key, crypto, cipher),
      gcm: (k, iv) => cipher.aesGcmDecrypt(k, iv),
      maxSize: slot.part.byteLength,
      expectSize: this.o.plainSize,
      sink: (plain) => this.push(plain),
    });
  }

  /** File bytes in order. Throws ENC_MAGIC, ENC_TRUNCATED, ENC_OVERSIZED, ENC_KEY, IMAGE_* (first plain bytes), FLASH_*. */
  write(chunk: Uint8Array): void {
    if (!this.stream) throw new OtaError("OTADATA_STATE", "encrypted write before begin");
    this.stream.write(chunk);
    this.fed += chunk.byteLength;
  }

  /** The last file byte is in. Throws ENC_TRUNCATED, ENC_TAG, DOWNLOAD_SIZE, FLASH_*. */
  complete(): void {
    if (!this.stream) throw new OtaError("OTADATA_STATE", "encrypted complete before begin");
    const s = this.stream;
    this.stream = undefined;
    s.finish();
    const digest = toHex(this.sha.close());
    if (digest !== this.o.plainSha256.toLowerCase()) throw new OtaError("DOWNLOAD_HASH", `decrypted image ${digest.slice(0, 16)}..., manifest's plainSha256 ${this.o.plainSha256.slice(0, 16)}...`);
    this.o.slot.complete();
    this.done = true;
  }

  adopt(): void {
    throw new OtaError("OTADATA_STATE", "an encrypted file is never adopted: its plain image is (modules/agent.ts)");
  }

  /** File bytes are not kept: nothing before the resume point (always 0) is ever read back. */
  read(offset: number, target: Uint8Array): void {
    if (target.byteLength > 0) throw new RangeError(`encrypted bytes at ${offset} are not kept`);
  }

  private push(plain: Uint8Array): void {
    if (this.out === 0) {
      try {
        this.o.checkStart(plain);
      } catch (e) {
        // ECIES has no key check value: another device's key only shows as noise where the image starts.
        if (e instanceof OtaError && e.code === "IMAGE_MAGIC") throw new OtaError("ENC_KEY", `the decrypted bytes are no app image (${e.detail}): encrypted for another device key, or altered`);
        throw e;
      }
    }
    this.o.slot.write(plain);
    this.sha.write(plain);
    this.out += plain.byteLength;
  }
}
