/*
 * `espsecure.py sign_data` on the build server, byte for byte (see modules/sigblock.ts for the
 * layouts). v1 signatures are deterministic (RFC 6979 over SHA-256, as espsecure v4's
 * ecdsa.sign_deterministic and v5's deterministic_signing), so our v1 output equals
 * espsecure's for the same key and image. v2 signatures are deterministic here too;
 * espsecure's v2 uses a random k, so only the structure and the verification compare.
 */
import { OtaError } from "../../modules/errors";
import {
  decodeV2Block, detectScheme, verifyImageSignature,
  SECTOR_SIZE, V2_BLOCK_SIZE, V2_MAX_BLOCKS, type SigScheme, type V2Block,
} from "../../modules/sigblock";
import { encodeV1Trailer, encodeV2EcdsaBlock } from "./sigblock-encode";
import type { TrustedKey } from "../../modules/keys";
import { nodeCrypto, sha256 } from "../crypto";
import { signDigestEcdsa, type SigningKey } from "./keys";

function ecdsaOnly(k: SigningKey): void {
  if (k.type !== "ecdsa-p256") throw new OtaError("KEY_TYPE", "image signatures (espsecure sign_data) need an ECDSA P-256 key; RSA-2048 is for manifests");
}

/** `espsecure.py sign_data --version 1`: image || u32 0 || r||s. */
export function signV1(image: Uint8Array, key: SigningKey): Uint8Array {
  ecdsaOnly(key);
  const out = new Uint8Array(image.length + 68);
  out.set(image);
  out.set(encodeV1Trailer(signDigestEcdsa(key, sha256(image))), image.length);
  return out;
}

/** Pad to a 4 KB multiple with 0xFF, as espsecure does before a v2 signature sector. */
export function padToSector(image: Uint8Array): Uint8Array {
  if (image.length % SECTOR_SIZE === 0) return image;
  const out = new Uint8Array(image.length + SECTOR_SIZE - (image.length % SECTOR_SIZE)).fill(0xff);
  out.set(image);
  return out;
}

/** The valid blocks at the start of a signed file's last sector (espsecure's validate_signature_block loop). */
export function existingV2Blocks(signed: Uint8Array): Uint8Array[] {
  if (signed.length < SECTOR_SIZE || signed.length % SECTOR_SIZE) return [];
  const sector = signed.subarray(signed.length - SECTOR_SIZE);
  const out: Uint8Array[] = [];
  for (let i = 0; i < V2_MAX_BLOCKS; i++) {
    const b = sector.subarray(i * V2_BLOCK_SIZE, (i + 1) * V2_BLOCK_SIZE);
    if (!decodeV2Block(b)) break;
    out.push(b.slice());
  }
  return out;
}

/**
 * `espsecure.py sign_data --version 2` with 1..3 ECDSA P-256 keys. With `append`, an already
 * signed file keeps its valid blocks and gets new ones (`--append_signatures`).
 */
export function signV2(image: Uint8Array, keys: readonly SigningKey[], options: { append?: boolean } = {}): Uint8Array {
  if (!keys.length) throw new TypeError("signV2: no key");
  keys.forEach(ecdsaOnly);
  let contents = padToSector(image);
  let blocks: Uint8Array[] = [];
  if (options.append && image.length % SECTOR_SIZE === 0) {
    blocks = existingV2Blocks(image);
    if (blocks.length) contents = image.subarray(0, image.length - SECTOR_SIZE);
  }
  if (blocks.length + keys.length > V2_MAX_BLOCKS) throw new OtaError("SIG_FORMAT", `at most ${V2_MAX_BLOCKS} signature blocks (${blocks.length} present, ${keys.length} to add)`);
  const digest = sha256(contents);
  for (const k of keys) {
    const pt = k.publicKey.export({ format: "jwk" });
    const point = new Uint8Array(65);
    point[0] = 4;
    point.set(Buffer.from(pt.x!, "base64url"), 1);
    point.set(Buffer.from(pt.y!, "base64url"), 33);
    blocks.push(encodeV2EcdsaBlock(digest, point, signDigestEcdsa(k, digest)));
  }
  const out = new Uint8Array(contents.length + SECTOR_SIZE).fill(0xff);
  out.set(contents);
  blocks.forEach((b, i) => out.set(b, contents.length + i * V2_BLOCK_SIZE));
  return out;
}

export function signImage(image: Uint8Array, keys: readonly SigningKey[], scheme: SigScheme): Uint8Array {
  if (scheme === "v1") {
    if (keys.length !== 1) throw new OtaError("USAGE", "Secure Boot v1 signs with exactly one key");
    return signV1(image, keys[0]!);
  }
  return signV2(image, keys);
}

/** Verify a signed file in memory with the device's verifier. Throws the SIG_* codes. */
export function verifySignedImage(file: Uint8Array, keys: readonly TrustedKey[]): { scheme: SigScheme; imageLength: number; keyId: string } {
  return verifyImageSignature((off, t) => t.set(file.subarray(off, off + t.length)), file.length, keys, nodeCrypto, new Uint8Array(4096));
}

/** `espsecure.py signature_info_v2`-like summary (no key needed). */
export function signatureInfo(file: Uint8Array): { scheme: SigScheme | null; imageLength: number; blocks: Array<V2Block & { index: number; digestMatches: boolean }> } {
  const scheme = detectScheme((off, t) => t.set(file.subarray(off, off + t.length)), file.length);
  if (scheme !== "v2") return { scheme, imageLength: scheme === "v1" ? file.length - 68 : file.length, blocks: [] };
  const imageLength = file.length - SECTOR_SIZE;
  const digest = Buffer.from(sha256(file.subarray(0, imageLength)));
  return {
    scheme,
    imageLength,
    blocks: existingV2Blocks(file).map((b, index) => {
      const d = decodeV2Block(b)!;
      return { ...d, index, digestMatches: digest.equals(Buffer.from(d.digest)) };
    }),
  };
}
