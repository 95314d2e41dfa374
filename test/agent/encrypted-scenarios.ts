/*
 * Pre-encrypted releases (issue 31) as scenarios (host-sim/lab/scenarios.ts), run by
 * test/agent/encrypted.test.ts on the Node engine and test/xs/encrypted.test.ts in both engines.
 * Files made by Espressif's esp_enc_img_gen.py (RSA-3072 and ECIES-P256, of an image espsecure.py
 * signed: test/release/vectors/encrypted/README.md) install with every check in force: the GCM
 * tag, the image validation, the signature block, the manifest's plain size/SHA-256 and the
 * file's size/SHA-256. Every bad file ends with its code and the old image running.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Scenario } from "../../host-sim/lab/scenarios";
import { generateDeviceKey } from "../../backend/release/encrypted-img";
import { keyConfigOf, loadPublicKey } from "../../backend/release/keys";
import { ENC_HEADER_SIZE } from "../../modules/enc-image";

const V = join(import.meta.dirname, "../release/vectors");
const read = (f: string) => new Uint8Array(readFileSync(join(V, f)));
const rsaPem = readFileSync(join(V, "encrypted/rsa3072.pem"), "utf8");
const eccPem = readFileSync(join(V, "encrypted/ecc.pem"), "utf8");
const hmacHex = Buffer.from(read("encrypted/ecc.hmac.bin")).toString("hex");
const signedPlain = read("app.v1.key-a.bin");
const keyA = keyConfigOf(loadPublicKey(join(V, "key-a.pub.pem")));

const pem = (k: ReturnType<typeof generateDeviceKey>["privateKey"]) => k.export({ type: "pkcs8", format: "pem" }) as string;
const rsaKey = pem(generateDeviceKey("rsa3072").privateKey);
const eccKey = pem(generateDeviceKey("ecies-p256").privateKey);
const otherRsa = pem(generateDeviceKey("rsa3072").privateKey);
const otherEcc = pem(generateDeviceKey("ecies-p256").privateKey);
const V11 = { version: "1.1.0", secureVersion: 1 };

const flip = (at: number) => (b: Uint8Array) => { const c = b.slice(); c[at < 0 ? c.length + at : at]! ^= 0x20; return c; };
const failed = (code: Scenario["expect"]["code"]): Scenario["expect"] => ({ version: "1.0.0", final: "failed", code, app0Untouched: true });

/** The espsecure-signed app.v1.key-a.bin ("sensor" 2.0.0) in a file Espressif's tool made, signature required. */
function esp(name: string, summary: string, file: string, key: Record<string, string>, extra: Partial<Scenario> = {}, plain = signedPlain): Scenario {
  return {
    name, summary,
    factory: { version: "1.0.0", secureVersion: 1, project: "sensor" },
    releases: [{ image: { version: "2.0.0", secureVersion: 1 }, bytes: plain, encrypt: { file: read(`encrypted/${file}`) } }],
    config: { requireImageSignature: true, imageKeys: [keyA], ...key },
    expect: { version: "2.0.0", final: "committed" },
    ...extra,
  };
}

/** A 64 KB lab image (16 blocks), encrypted by xsota's build-server code for `key`'s public half. */
function ours(name: string, summary: string, key: string, extra: Partial<Scenario> = {}, enc: { transform?: (b: Uint8Array) => Uint8Array } = {}, serve?: (b: Uint8Array) => Uint8Array): Scenario {
  return {
    name, summary, releases: [{ image: V11, encrypt: { key, ...enc }, ...(serve ? { serve } : {}) }],
    config: { decryptionKey: key }, expect: { version: "1.1.0", final: "committed" }, ...extra,
  };
}

export const encScenarios: Scenario[] = [
  esp("enc-esp-rsa", "esp.signed.rsa3072.bin (Espressif's tool), the device key a PEM in the configuration", "esp.signed.rsa3072.bin", { decryptionKey: rsaPem }),
  esp("enc-esp-ecc-hmac", "esp.signed.ecc.bin (Espressif's tool), the device key as the eFuse HMAC key", "esp.signed.ecc.bin", { decryptionHmacKey: hmacHex }),
  esp("enc-esp-ecc-pem", "esp.signed.ecc.bin, the device key as the P-256 PEM the HMAC key gives", "esp.signed.ecc.bin", { decryptionKey: eccPem }),
  esp("enc-esp-unsigned", "an unsigned image decrypts, then the signature check (required) refuses it", "esp.rsa3072.bin", { decryptionKey: rsaPem }, { expect: failed("SIG_MISSING") }, read("encrypted/plain.bin")),
  {
    ...esp("enc-esp-plain-hash", "the manifest's plainSha256 is not the decrypted image's: DOWNLOAD_HASH", "esp.signed.rsa3072.bin", { decryptionKey: rsaPem }, { expect: failed("DOWNLOAD_HASH") }),
    releases: [{ image: { version: "2.0.0", secureVersion: 1 }, bytes: signedPlain, encrypt: { file: read("encrypted/esp.signed.rsa3072.bin") }, manifest: { encryption: { format: "esp_encrypted_img", scheme: "rsa3072", plainSize: signedPlain.length, plainSha256: "ab".repeat(32) } } }],
  },
  ours("enc-ours-rsa", "a 64 KB image encrypted for an RSA-3072 device key", rsaKey),
  ours("enc-ours-ecc", "a 64 KB image encrypted for a P-256 (ECIES) device key", eccKey),
  ours("enc-ours-cut", "the connection cut at byte 40,000: the file again from byte 0", rsaKey, { faults: { image: [{ kind: "cut-at", at: 40_000, times: 1 }] } }),
  ours("enc-no-key", "no device key: refused before any byte is fetched", rsaKey, { config: {}, expect: { version: "1.0.0", final: "refused", code: "ENC_KEY", app0Untouched: true } }),
  ours("enc-wrong-rsa", "another device's RSA key: the PKCS#1 unwrap fails at byte 512", rsaKey, { config: { decryptionKey: otherRsa }, expect: failed("ENC_KEY") }),
  ours("enc-wrong-ecc", "another device's ECIES key: the first decrypted bytes are no image, nothing written", eccKey, { config: { decryptionKey: otherEcc }, expect: failed("ENC_KEY") }),
  ours("enc-rsa-file-ecc-key", "an ECIES key for an RSA file: the header's 'point' is not on P-256", rsaKey, { config: { decryptionKey: eccKey }, expect: failed("ENC_KEY") }),
  ours("enc-bad-body", "a ciphertext byte altered, signed as such: ENC_TAG", rsaKey, { expect: failed("ENC_TAG") }, { transform: flip(ENC_HEADER_SIZE + 30_000) }),
  ours("enc-bad-tag", "the header's tag altered, signed as such: ENC_TAG", rsaKey, { expect: failed("ENC_TAG") }, { transform: flip(410) }),
  ours("enc-bad-served", "the last byte altered on the host only: ENC_TAG (checked before the file's SHA-256)", rsaKey, { expect: failed("ENC_TAG") }, {}, flip(-1)),
  ours("enc-truncated", "the file cut by 100 bytes, signed as such: ENC_TRUNCATED", rsaKey, { expect: failed("ENC_TRUNCATED") }, { transform: (b) => b.slice(0, b.length - 100) }),
  ours("enc-oversized", "100 bytes appended, signed as such: ENC_OVERSIZED", rsaKey, { expect: failed("ENC_OVERSIZED") }, { transform: (b) => { const c = new Uint8Array(b.length + 100); c.set(b); return c; } }),
  ours("enc-bad-magic", "the magic altered, signed as such: ENC_MAGIC", rsaKey, { expect: failed("ENC_MAGIC") }, { transform: flip(1) }),
];
