/*
 * Verification of a downloaded image, reading what is IN FLASH (not what was received):
 * size, SHA-256 against the manifest, the espsecure signature block when required, the full
 * bootloader validation, and the app descriptor (project and version equal to the manifest's,
 * secure_version as `secureVersionOk` says, chip id). One read and one SHA-256 pass over the slot
 * serve every check.
 */
import type { CryptoPort } from "./ports";
import { OtaError } from "./errors";
import { toHex } from "./bytes";
import { validateImage, parseImageStart, type ImageInfo } from "./image";
import { readSignature } from "./sigblock";
import type { TrustedKey } from "./keys";
import type { AntiRollback } from "./config";

export interface Expectation {
  size: number;
  sha256: string;
  version: string;
  secureVersion: number;
  /** Who holds the anti-rollback floor (AppConfig.antiRollback): decides the secure_version check. */
  antiRollback: AntiRollback;
  project: string;
  chipId: number;
  requireSignature: boolean;
  imageKeys: readonly TrustedKey[];
}

/**
 * The image's esp_app_desc_t secure_version against the manifest's. "efuse": equal (the bootloader
 * checks and the eFuse floor rises from the image's value, so the manifest's floor must be that one).
 * "manifest": equal, or 0, what ESP-IDF writes into every image built without
 * CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (esp_app_desc.c): then only the signed manifest says it.
 */
export function secureVersionOk(image: number, manifest: number, mode: AntiRollback): boolean {
  return image === manifest || (mode === "manifest" && image === 0);
}

export type SlotReader = (offset: number, target: Uint8Array) => void;

/** The first block of an image, before anything is written. Throws IMAGE_MAGIC/SEGMENTS/APP_DESC/TRUNCATED/CHIP/PROJECT. */
export function checkImageStart(first: Uint8Array, project: string, chipId: number): void {
  const { header, appDesc } = parseImageStart(first);
  if (header.chipId !== chipId) throw new OtaError("IMAGE_CHIP", `image chip id ${header.chipId}, this chip ${chipId}`);
  if (appDesc.projectName !== project) throw new OtaError("IMAGE_PROJECT", `'${appDesc.projectName}', running '${project}'`);
}

/**
 * Verify the slot, reading what is in flash. `scratch` is the caller's 4 KB buffer.
 *
 * One in-order read of the slot feeds one SHA-256, and each check takes the digest of the prefix
 * it covers as the read passes it (Sha256.digest(), Moddable's Digest.close(true)): the
 * bootloader's appended SHA-256 at the end of the image body, the signature's digest at the end
 * of the image part, and the whole slot against the manifest at the end. So the slot is read and
 * hashed once, however many checks there are.
 *
 * When checks fail, the precedence is: the slot differs from the manifest (FLASH_READBACK: flash
 * did not keep what was written, so whatever else failed is a consequence), then the signature,
 * then the image format, then the app descriptor against the manifest.
 * Throws FLASH_READBACK, SIG_*, IMAGE_* (format, chip, project, version, IMAGE_SECURE_VERSION).
 */
export function verifySlot(read: SlotReader, want: Expectation, crypto: CryptoPort, scratch: Uint8Array): ImageInfo {
  const sha = crypto.sha256();
  let hashed = 0;
  /** Read and hash the slot up to `end` (the bytes no check has read yet). */
  const hashTo = (end: number) => {
    while (hashed < end) {
      const n = Math.min(scratch.byteLength, end - hashed);
      const view = n === scratch.byteLength ? scratch : scratch.subarray(0, n);
      read(hashed, view);
      sha.write(view);
      hashed += view.byteLength;
    }
  };
  /** `read`, hashing the part of each read that continues the hashed prefix. */
  const hashingRead: SlotReader = (offset, target) => {
    read(offset, target);
    const end = Math.min(offset + target.byteLength, want.size);
    if (offset <= hashed && end > hashed) {
      sha.write(offset === hashed && end - offset === target.byteLength ? target : target.subarray(hashed - offset, end - offset));
      hashed = end;
    }
  };
  const digestOf = (length: number): Uint8Array => {
    if (hashed > length) throw new RangeError(`digest of the first ${length} bytes asked after ${hashed} were hashed`);
    hashTo(length);
    return sha.digest();
  };
  const checkReadback = () => {
    hashTo(want.size);
    const digest = toHex(sha.close());
    if (digest !== want.sha256.toLowerCase()) throw new OtaError("FLASH_READBACK", `slot holds ${digest.slice(0, 16)}..., manifest ${want.sha256.slice(0, 16)}...`);
  };
  let info: ImageInfo | undefined;
  try {
    const sig = want.requireSignature ? readSignature(read, want.size, want.imageKeys, crypto, scratch) : undefined;
    let formatError: unknown;
    try {
      info = validateImage(hashingRead, sig ? sig.imageLength : want.size, crypto, scratch, digestOf);
    } catch (e) {
      if (!sig) throw e;
      formatError = e; // the signature's verdict outranks it
    }
    if (sig) sig.check(digestOf(sig.imageLength));
    if (formatError !== undefined || !info) throw formatError;
    if (info.header.chipId !== want.chipId) throw new OtaError("IMAGE_CHIP", `image chip id ${info.header.chipId}, this chip ${want.chipId}`);
    if (info.appDesc.projectName !== want.project) throw new OtaError("IMAGE_PROJECT", `'${info.appDesc.projectName}', running '${want.project}'`);
    if (info.appDesc.version !== want.version) throw new OtaError("IMAGE_VERSION", `image ${info.appDesc.version}, manifest ${want.version}`);
    if (!secureVersionOk(info.appDesc.secureVersion, want.secureVersion, want.antiRollback)) throw new OtaError("IMAGE_SECURE_VERSION", `image secure_version ${info.appDesc.secureVersion}, manifest ${want.secureVersion} (antiRollback ${want.antiRollback})`);
  } catch (e) {
    checkReadback();
    throw e;
  }
  checkReadback();
  return info;
}
