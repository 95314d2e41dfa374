/*
 * Pre-encrypted releases (issue 31) on a simulated device, Node engine: real HTTPS on loopback,
 * SIM's chip and bootloader, virtual time. Files made by Espressif's esp_enc_img_gen.py (RSA-3072
 * and ECIES-P256, of an image espsecure.py signed) install with every check in force: the GCM
 * tag, the image validation, the signature block, the manifest's plain size/SHA-256 and the
 * file's size/SHA-256. Every bad file ends with its code and the old image running.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runScenario, checkOutcome, Lab, type Scenario } from "../../host-sim/scenarios";
import { createNodeEngine } from "../../host-sim/engine-node";
import { generateDeviceKey } from "../../host-sim/release/encrypted-img";
import { keyConfigOf, loadPublicKey } from "../../host-sim/release/keys";
import { ENC_HEADER_SIZE } from "../../modules/enc-image";

const V = join(import.meta.dirname, "../release/vectors");
const read = (f: string) => new Uint8Array(readFileSync(join(V, f)));
const rsaPem = readFileSync(join(V, "encrypted/rsa3072.pem"), "utf8");
const eccPem = readFileSync(join(V, "encrypted/ecc.pem"), "utf8");
const hmacHex = Buffer.from(read("encrypted/ecc.hmac.bin")).toString("hex");
const signedPlain = read("app.v1.key-a.bin");
const keyA = keyConfigOf(loadPublicKey(join(V, "key-a.pub.pem")));

let lab: Lab;
const engine = createNodeEngine();
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

const pem = (k: ReturnType<typeof generateDeviceKey>["privateKey"]) => k.export({ type: "pkcs8", format: "pem" }) as string;
const rsaDevice = generateDeviceKey("rsa3072");
const eccDevice = generateDeviceKey("ecies-p256");
const V11 = { version: "1.1.0", secureVersion: 1 };

/** The Espressif vectors: the espsecure-signed app.v1.key-a.bin ("sensor" 2.0.0), encrypted by esp_enc_img_gen.py. */
function espScenario(name: string, file: string, key: Record<string, string>, extra: Partial<Scenario> = {}): Scenario {
  return {
    name, summary: `${file} by Espressif's tool`,
    factory: { version: "1.0.0", secureVersion: 1, project: "sensor" },
    releases: [{ image: { version: "2.0.0", secureVersion: 1 }, bytes: signedPlain, encrypt: { file: read(`encrypted/${file}`) } }],
    config: { requireImageSignature: true, imageKeys: [keyA], ...key },
    expect: { version: "2.0.0", final: "committed" },
    ...extra,
  };
}

const flip = (at: number) => (b: Uint8Array) => { const c = b.slice(); c[at < 0 ? c.length + at : at]! ^= 0x20; return c; };
const failed = (code: Scenario["expect"]["code"]) => ({ version: "1.0.0", final: "failed" as const, code, app0Untouched: true });

async function expectScenario(s: Scenario) {
  const o = await runScenario(s, engine, lab);
  expect(checkOutcome(s, o, o.factoryApp0), s.name).toEqual([]);
  return o;
}

describe("Espressif-made encrypted images install with every check in force", () => {
  it("RSA-3072 (esp.signed.rsa3072.bin), the device key a PEM in the configuration", async () => {
    const o = await expectScenario(espScenario("esp-rsa", "esp.signed.rsa3072.bin", { decryptionKey: rsaPem }));
    expect(o.running).toEqual({ version: "2.0.0", slot: 1 });
  });

  it("ECIES-P256 (esp.signed.ecc.bin), the device key as the eFuse HMAC key, and as the derived PEM", async () => {
    await expectScenario(espScenario("esp-ecc-hmac", "esp.signed.ecc.bin", { decryptionHmacKey: hmacHex }));
    await expectScenario(espScenario("esp-ecc-pem", "esp.signed.ecc.bin", { decryptionKey: eccPem }));
  });

  it("the plain image's checks still apply after decryption: a signature required and absent is SIG_MISSING", async () => {
    const s = espScenario("esp-unsigned", "esp.rsa3072.bin", { decryptionKey: rsaPem }, { expect: failed("SIG_MISSING") });
    s.releases[0]!.bytes = read("encrypted/plain.bin");
    await expectScenario(s);
  });

  it("a manifest whose plainSha256 is not the decrypted image's: DOWNLOAD_HASH", async () => {
    const s = espScenario("esp-plain-hash", "esp.signed.rsa3072.bin", { decryptionKey: rsaPem }, { expect: failed("DOWNLOAD_HASH") });
    s.releases[0]!.manifest = { encryption: { format: "esp_encrypted_img", scheme: "rsa3072", plainSize: signedPlain.length, plainSha256: "ab".repeat(32) } };
    await expectScenario(s);
  });
});

describe("files made by xsota encrypt, 64 KB images (16 blocks)", () => {
  const ours = (name: string, key: string, extra: Partial<Scenario> = {}, enc: Record<string, unknown> = {}): Scenario => ({
    name, summary: name, releases: [{ image: V11, encrypt: { key, ...enc } }], config: { decryptionKey: key }, expect: { version: "1.1.0", final: "committed" }, ...extra,
  });

  it("RSA-3072 and ECIES install; a cut restarts the file from byte 0 (no Range request) and still commits", async () => {
    await expectScenario(ours("ours-rsa", pem(rsaDevice.privateKey)));
    await expectScenario(ours("ours-ecc", pem(eccDevice.privateKey)));
    const before = lab.host.stats.log.length;
    await expectScenario(ours("ours-cut", pem(rsaDevice.privateKey), { faults: { image: [{ kind: "cut-at", at: 40_000, times: 1 }] } }));
    const requests = lab.host.stats.log.slice(before).filter((r) => r.path.includes("/fw-"));
    expect(requests.length).toBe(2);
    expect(requests.every((r) => !r.range)).toBe(true);
  });

  it("without a device key: refused with ENC_KEY before any byte is fetched", async () => {
    const s = ours("no-key", pem(rsaDevice.privateKey), { config: {}, expect: { version: "1.0.0", final: "refused", code: "ENC_KEY", app0Untouched: true } });
    await expectScenario(s);
  });

  it("another device's key: ENC_KEY (RSA: the PKCS#1 unwrap at byte 512; ECIES: the first decrypted bytes are no image, nothing written)", async () => {
    await expectScenario(ours("wrong-rsa", pem(rsaDevice.privateKey), { config: { decryptionKey: pem(generateDeviceKey("rsa3072").privateKey) }, expect: failed("ENC_KEY") }));
    await expectScenario(ours("wrong-ecc", pem(eccDevice.privateKey), { config: { decryptionKey: pem(generateDeviceKey("ecies-p256").privateKey) }, expect: failed("ENC_KEY") }));
    // an RSA key for an ECIES file: the header's "point" is the RSA block, not on P-256
    await expectScenario(ours("rsa-file-ecc-key", pem(rsaDevice.privateKey), { config: { decryptionKey: pem(eccDevice.privateKey) }, expect: failed("ENC_KEY") }));
  });

  it("an altered ciphertext byte or tag, signed as such: ENC_TAG; the same byte altered on the host only: ENC_TAG (before the file's SHA-256)", async () => {
    const k = pem(rsaDevice.privateKey);
    await expectScenario(ours("bad-body", k, { expect: failed("ENC_TAG") }, { transform: flip(ENC_HEADER_SIZE + 30_000) }));
    await expectScenario(ours("bad-tag", k, { expect: failed("ENC_TAG") }, { transform: flip(410) }));
    const s = ours("bad-served", k, { expect: failed("ENC_TAG") });
    s.releases[0]!.serve = flip(-1);
    await expectScenario(s);
  });

  it("a truncated file, signed as such: ENC_TRUNCATED; one with bytes appended: ENC_OVERSIZED; a bad magic: ENC_MAGIC", async () => {
    const k = pem(rsaDevice.privateKey);
    await expectScenario(ours("truncated", k, { expect: failed("ENC_TRUNCATED") }, { transform: (b: Uint8Array) => b.slice(0, b.length - 100) }));
    await expectScenario(ours("oversized", k, { expect: failed("ENC_OVERSIZED") }, { transform: (b: Uint8Array) => { const c = new Uint8Array(b.length + 100); c.set(b); return c; } }));
    await expectScenario(ours("bad-magic", k, { expect: failed("ENC_MAGIC") }, { transform: flip(1) }));
  });
});
