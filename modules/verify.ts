/*
 * Verification of a downloaded image, reading what is IN FLASH (not what was received):
 * size, SHA-256 against the manifest, the espsecure signature block when required, the full
 * bootloader validation, and the app descriptor (project, version and secure_version equal to
 * the manifest's, chip id).
 */
import type { CryptoPort } from "./ports";
import { OtaError } from "./errors";
import { toHex } from "./bytes";
import { validateImage, parseImageStart, type ImageInfo } from "./image";
import { verifyImageSignature } from "./sigblock";
import type { TrustedKey } from "./keys";

export interface Expectation {
  size: number;
  sha256: string;
  version: string;
  secureVersion: number;
  project: string;
  chipId: number;
  requireSignature: boolean;
  imageKeys: readonly TrustedKey[];
}

export type SlotReader = (offset: number, target: Uint8Array) => void;

/** The first block of an image, before anything is written. Throws IMAGE_MAGIC/SEGMENTS/APP_DESC/TRUNCATED/CHIP/PROJECT. */
export function checkImageStart(first: Uint8Array, project: string, chipId: number): void {
  const { header, appDesc } = parseImageStart(first);
  if (header.chipId !== chipId) throw new OtaError("IMAGE_CHIP", `image chip id ${header.chipId}, this chip ${chipId}`);
  if (appDesc.projectName !== project) throw new OtaError("IMAGE_PROJECT", `'${appDesc.projectName}', running '${project}'`);
}

/**
 * Verify the slot. `scratch` is the caller's 4 KB buffer.
 * The read-back SHA-256 is taken from the same flash reads the signature check and the
 * bootloader validation make (both read the image in order), so the slot is read about once;
 * a read-back mismatch is reported in preference to whatever format error it caused.
 * Throws FLASH_READBACK (the slot differs from the manifest's SHA-256), SIG_* (signature),
 * IMAGE_* (format, chip, project, version).
 */
export function verifySlot(read: SlotReader, want: Expectation, crypto: CryptoPort, scratch: Uint8Array): ImageInfo {
  const sha = crypto.sha256();
  let hashed = 0;
  const hashingRead: SlotReader = (offset, target) => {
    read(offset, target);
    const end = Math.min(offset + target.byteLength, want.size);
    if (offset <= hashed && end > hashed) {
      sha.write(target.subarray(hashed - offset, end - offset));
      hashed = end;
    }
  };
  const checkReadback = () => {
    while (hashed < want.size) {
      const view = scratch.subarray(0, Math.min(scratch.byteLength, want.size - hashed));
      read(hashed, view);
      sha.write(view);
      hashed += view.byteLength;
    }
    const digest = toHex(sha.close());
    if (digest !== want.sha256.toLowerCase()) throw new OtaError("FLASH_READBACK", `slot holds ${digest.slice(0, 16)}..., manifest ${want.sha256.slice(0, 16)}...`);
  };
  let info: ImageInfo;
  try {
    const imageLength = want.requireSignature ? verifyImageSignature(hashingRead, want.size, want.imageKeys, crypto, scratch).imageLength : want.size;
    info = validateImage(hashingRead, imageLength, crypto, scratch);
  } catch (e) {
    checkReadback();
    throw e;
  }
  checkReadback();
  if (info.header.chipId !== want.chipId) throw new OtaError("IMAGE_CHIP", `image chip id ${info.header.chipId}, this chip ${want.chipId}`);
  if (info.appDesc.projectName !== want.project) throw new OtaError("IMAGE_PROJECT", `'${info.appDesc.projectName}', running '${want.project}'`);
  if (info.appDesc.version !== want.version) throw new OtaError("IMAGE_VERSION", `image ${info.appDesc.version}, manifest ${want.version}`);
  if (info.appDesc.secureVersion !== want.secureVersion) throw new OtaError("IMAGE_VERSION", `image secure_version ${info.appDesc.secureVersion}, manifest ${want.secureVersion}`);
  return info;
}
