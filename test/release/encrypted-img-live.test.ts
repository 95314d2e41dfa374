/*
 * Against Espressif's real esp_enc_img_gen.py, when it can run here: set ESP_ENC_IMG_GEN to its
 * path (esp_encrypted_img/tools/esp_enc_img_gen.py in a checkout of
 * github.com/espressif/idf-extra-components), with a python3 that imports cryptography (Debian:
 * apt-get install python3-cryptography). ESP_ENCRYPTED_IMG_DIR, a checkout's esp_encrypted_img
 * folder, adds Espressif's own RSA test vector (test_apps/main/image.bin).
 */
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decryptImage, encryptImage, generateDeviceKey } from "../../backend/release/encrypted-img";

const PY = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function findTool(): string | null {
  // /tmp/esp_encrypted_img: where the ENC session put the tool on the build machine.
  const candidates = [process.env.ESP_ENC_IMG_GEN, "/tmp/esp_encrypted_img/esp_enc_img_gen.py"].filter((x): x is string => !!x && existsSync(x));
  for (const c of candidates) {
    try {
      execFileSync(PY, [c, "--help"], { stdio: "ignore", timeout: 20_000 });
      return c;
    } catch {
      /* python3 without cryptography: try the next */
    }
  }
  return null;
}

const tool = findTool();
if (!tool) console.warn("encrypted-img-live: skipped: set ESP_ENC_IMG_GEN=/path/to/esp_enc_img_gen.py (idf-extra-components/esp_encrypted_img/tools; needs python3 cryptography)");
const espDir = process.env.ESP_ENCRYPTED_IMG_DIR;
const espVector = espDir && existsSync(join(espDir, "test_apps/main/image.bin")) ? espDir : null;
if (!espVector) console.warn("encrypted-img-live: Espressif's own test vector skipped: set ESP_ENCRYPTED_IMG_DIR to a checkout's esp_encrypted_img folder");

describe.skipIf(!tool)("interop with the real esp_enc_img_gen.py", () => {
  const run = (...args: string[]) => execFileSync(PY, [tool!, ...args], { encoding: "utf8", timeout: 60_000 });

  it("both schemes, both ways: its files decrypt here, ours decrypt there, to the same bytes", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-enc-live-"));
    const p = (f: string) => join(dir, f);
    try {
      const image = new Uint8Array(70_001).map((_, i) => (i * 131 + 17) & 255);
      writeFileSync(p("image.bin"), image);
      for (const scheme of ["rsa3072", "ecies-p256"] as const) {
        const k = generateDeviceKey(scheme);
        writeFileSync(p("k.pem"), k.privateKey.export({ type: "pkcs8", format: "pem" }));
        writeFileSync(p("k.pub.pem"), k.publicKey.export({ type: "spki", format: "pem" }));
        run("encrypt", p("image.bin"), p("k.pub.pem"), p("theirs.bin"));
        const d = decryptImage(new Uint8Array(readFileSync(p("theirs.bin"))), k.privateKey);
        expect([scheme, d.scheme, Buffer.from(d.plaintext).equals(Buffer.from(image))]).toEqual([scheme, scheme, true]);
        writeFileSync(p("ours.bin"), encryptImage(image, { publicKey: k.publicKey }));
        run("decrypt", p("ours.bin"), p("k.pem"), p("back.bin"));
        expect([scheme, Buffer.from(readFileSync(p("back.bin"))).equals(Buffer.from(image))]).toEqual([scheme, true]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("its tool refuses our file with a flipped tag byte, as we refuse its", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-enc-live-"));
    const p = (f: string) => join(dir, f);
    try {
      const k = generateDeviceKey("ecies-p256");
      writeFileSync(p("k.pem"), k.privateKey.export({ type: "pkcs8", format: "pem" }));
      const file = encryptImage(new Uint8Array(1000).fill(7), { publicKey: k.publicKey });
      file[408]! ^= 1;
      writeFileSync(p("bad.bin"), file);
      expect(() => execFileSync(PY, [tool!, "decrypt", p("bad.bin"), p("k.pem"), p("out.bin")], { stdio: "pipe", timeout: 60_000 })).toThrow(/InvalidTag/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!espVector)("Espressif's own test vector (esp_encrypted_img test_apps)", () => {
  it("test_apps/main/image.bin decrypts with certs/test_rsa_private_key.pem", () => {
    const file = new Uint8Array(readFileSync(join(espVector!, "test_apps/main/image.bin")));
    const d = decryptImage(file, readFileSync(join(espVector!, "test_apps/main/certs/test_rsa_private_key.pem"), "utf8"));
    expect(d.scheme).toBe("rsa3072");
    expect(d.plaintext.length).toBe(11680);
    // as esp_enc_img_gen.py decrypt gives it (checked 2026-12-07, component 2.7.1)
    expect(createHash("sha256").update(d.plaintext).digest("hex")).toBe("a230a5aae39e351c0d806acb453662dfe66afcec74f6c0c861d75048fae07f78");
  });
});
