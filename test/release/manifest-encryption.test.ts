/*
 * The manifest of an encrypted release (issue 31): url/size/sha256 name the esp_encrypted_img
 * file as published, `encryption` the scheme and the plain image's size and SHA-256. Parsed and
 * bounded like every other field, written by `xsota manifest --encrypted`, and refused by the
 * agent's policy before any download while the agent cannot decrypt.
 */
import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manifestFromJson, verifyManifest, type Manifest } from "../../modules/manifest";
import { decide, type PolicyFacts } from "../../modules/policy";
import { parseConfig } from "../../modules/config";
import { toHex } from "../../modules/bytes";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { encryptionEntry, schemeOfFile } from "../../backend/release/encrypted-img";
import { main } from "../../cli/main";
import { codeOf } from "../codes";

const V = join(import.meta.dirname, "vectors/encrypted");
const read = (f: string) => new Uint8Array(readFileSync(join(V, f)));
const plain = read("plain.bin");
const sha = (b: Uint8Array) => toHex(sha256(b));

const base = { schema: 1, product: "sensor", version: "2.0.0", secureVersion: 1, url: "https://h/images/x.bin", size: plain.length + 512, sha256: "ab".repeat(32), metaVersion: 1, expires: 2e12, channel: "stable" };
const enc = { format: "esp_encrypted_img", scheme: "rsa3072", plainSize: plain.length, plainSha256: sha(plain) };

describe("manifest field `encryption`", () => {
  it("is parsed when complete, and each bad part is MANIFEST_FIELD naming it", () => {
    expect(manifestFromJson({ ...base, encryption: enc }).encryption).toEqual(enc);
    expect(manifestFromJson({ ...base, encryption: { ...enc, scheme: "ecies-p256", extra: 1 } }).encryption).toEqual({ ...enc, scheme: "ecies-p256" });
    const bad: [unknown, RegExp][] = [
      [true, /encryption: expected/],
      [{ ...enc, format: "aes" }, /encryption\.format/],
      [{ ...enc, scheme: "oaep" }, /encryption\.scheme/],
      [{ ...enc, plainSize: plain.length + 1 }, /encryption\.plainSize: expected size - 512/],
      [{ ...enc, plainSize: 0 }, /encryption\.plainSize/],
      [{ ...enc, plainSha256: "AB".repeat(32) }, /encryption\.plainSha256/],
    ];
    for (const [value, message] of bad) {
      expect(codeOf(() => manifestFromJson({ ...base, encryption: value }))).toBe("MANIFEST_FIELD");
      expect(() => manifestFromJson({ ...base, encryption: value })).toThrow(message);
    }
  });

  it("is refused together with deltas: a plain patch would give the image away", () => {
    const delta = { from: { version: "1.0.0", size: 10, sha256: "00".repeat(32) }, url: "https://h/d.bin", size: 10, sha256: "11".repeat(32), compression: "none" };
    expect(() => manifestFromJson({ ...base, encryption: enc, deltas: [delta] })).toThrow(/encryption: not with deltas/);
  });

  it("is signed with the rest: createManifest -> verifyManifest round-trips it", () => {
    const key = generateKey("ecdsa-p256");
    const file = read("esp.ecc.bin");
    const env = createManifest({ product: "sensor", version: "2.0.0", secureVersion: 1, url: "https://h/x.bin", image: file, encryption: encryptionEntry(file, plain), keys: [key] });
    const { manifest } = verifyManifest(env, [trustedKeyOf(key)], nodeCrypto);
    expect(manifest).toMatchObject({ size: file.length, sha256: sha(file), encryption: { format: "esp_encrypted_img", scheme: "ecies-p256", plainSize: plain.length, plainSha256: sha(plain) } });
  });
});

describe("encryptionEntry / schemeOfFile (build server)", () => {
  it("reads the scheme from the header, for Espressif's files and ours", () => {
    expect(["esp.rsa3072.bin", "xsota.rsa3072.bin", "esp.ecc.bin", "xsota.ecc.bin"].map((f) => schemeOfFile(read(f)))).toEqual(["rsa3072", "rsa3072", "ecies-p256", "ecies-p256"]);
  });

  it("refuses a file that is not the encryption of the image, a cut file and a plain image", () => {
    const file = read("esp.rsa3072.bin");
    expect(codeOf(() => encryptionEntry(file, plain.subarray(1)))).toBe("MANIFEST_FIELD");
    expect(codeOf(() => encryptionEntry(file.subarray(0, file.length - 1), plain))).toBe("ENC_TRUNCATED");
    expect(codeOf(() => encryptionEntry(new Uint8Array([...file, 0]), plain))).toBe("ENC_OVERSIZED");
    expect(codeOf(() => encryptionEntry(plain, plain))).toBe("ENC_MAGIC");
  });
});

describe("the agent's policy", () => {
  const config = parseConfig({ product: "sensor", manifestUrl: "https://h/r.json", trustedKeys: [{ type: "ecdsa-p256", spki: "AAAA" }] });
  const m: Manifest = { schema: 1, product: "sensor", version: "2.0.0", secureVersion: 1, url: "https://h/x.bin", size: 2000, sha256: "00".repeat(32), metaVersion: 1, expires: Date.UTC(2030, 0, 1), channel: "stable" };
  const facts: PolicyFacts = {
    manifest: m, config, running: { version: "1.0.0", secureVersion: 1, project: "sensor" }, pendingVerify: false, floor: 1, chipId: 0,
    deviceId: "d1", slotSize: 1 << 20, wallNow: 0, tries: 0, rolledBack: false, force: false, crypto: nodeCrypto,
  };
  it("refuses an encrypted release before its download without a device key (ENC_KEY), even forced; takes it with one", () => {
    expect(decide(facts)).toBeNull();
    const encrypted = { ...m, encryption: { format: "esp_encrypted_img", scheme: "rsa3072", plainSize: 1488, plainSha256: "00".repeat(32) } } as Manifest;
    expect(decide({ ...facts, manifest: encrypted })).toBe("ENC_KEY");
    expect(decide({ ...facts, manifest: encrypted, force: true })).toBe("ENC_KEY");
    expect(decide({ ...facts, manifest: encrypted, canDecrypt: true })).toBeNull();
    expect(decide({ ...facts, manifest: { ...encrypted, size: 1 << 21, encryption: { ...encrypted.encryption!, plainSize: (1 << 21) - 512 } }, canDecrypt: true })).toBe("IMAGE_TOO_LARGE");
  });
});

describe("xsota manifest --encrypted", () => {
  it("signs the encrypted file's url, size and SHA-256 and the plain image's, and refuses --delta with it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-enc-manifest-"));
    const out: string[] = [];
    const o = process.stdout.write.bind(process.stdout);
    const e = process.stderr.write.bind(process.stderr);
    const run = async (...argv: string[]) => {
      process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
      process.stderr.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stderr.write;
      try { return await main(argv); } finally { process.stdout.write = o; process.stderr.write = e; }
    };
    try {
      const p = (f: string) => join(dir, f);
      expect(await run("keygen", "-o", p("k.pem"))).toBe(0);
      out.length = 0;
      expect(await run("manifest", "--image", join(V, "plain.bin"), "--encrypted", join(V, "esp.ecc.bin"), "--url", "https://u.example/", "--key", p("k.pem"), "-o", p("r.json"), "--json")).toBe(0);
      const file = read("esp.ecc.bin");
      const { manifest } = JSON.parse(out.join("")) as { manifest: Manifest };
      expect(manifest).toMatchObject({ product: "sensor", version: "2.0.0", size: file.length, sha256: sha(file), url: `https://u.example/images/${sha(file)}.bin` });
      expect(manifest.encryption).toEqual({ format: "esp_encrypted_img", scheme: "ecies-p256", plainSize: plain.length, plainSha256: sha(plain) });
      expect(await run("manifest", "--image", join(V, "plain.bin"), "--encrypted", join(V, "esp.ecc.bin"), "--url", "https://u.example/", "--key", p("k.pem"), "--delta", join(V, "plain.bin"), "--delta-from", join(V, "plain.bin"), "-o", p("r2.json"))).toBe(2);
      expect(await run("manifest", "--image", join(V, "plain.bin"), "--encrypted", join(V, "plain.bin"), "--url", "https://u.example/", "--key", p("k.pem"), "-o", p("r3.json"))).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
