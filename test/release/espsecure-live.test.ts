/*
 * Against Espressif's real espsecure.py, when it can run here. Set ESPSECURE to its path
 * (e.g. a checkout of github.com/espressif/esptool at tag v4.10.0: ESPSECURE=.../espsecure.py),
 * with python3 able to import cryptography and ecdsa (Debian: apt-get install python3-cryptography
 * python3-ecdsa python3-serial python3-intelhex python3-bitstring; or pip install esptool).
 */
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signV1, signV2, verifySignedImage } from "../../backend/release/espsecure";
import { loadPrivateKey, loadPublicKey, trustedKeyOf, publicKeyPem } from "../../backend/release/keys";

function findEspsecure(): string[] | null {
  const py = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  // /tmp/esptool410: where the SIGN session unpacked esptool v4.10.0 on the build machine.
  const candidates = [process.env.ESPSECURE, "/tmp/esptool410/espsecure.py"].filter((x): x is string => !!x && existsSync(x));
  for (const c of candidates) {
    try {
      execFileSync(py, [c, "--help"], { stdio: "ignore", timeout: 20_000 });
      return [py, c];
    } catch {
      /* try the next */
    }
  }
  try {
    execFileSync("espsecure.py", ["--help"], { stdio: "ignore", timeout: 20_000 });
    return ["espsecure.py"];
  } catch {
    return null;
  }
}

const cmd = findEspsecure();
if (!cmd) console.warn("espsecure-live: skipped: set ESPSECURE=/path/to/esptool/espsecure.py (esptool v4.x source; needs python3 cryptography + ecdsa)");

describe.skipIf(!cmd)("interop with the real espsecure.py", () => {
  const run = (...args: string[]) => execFileSync(cmd![0]!, [...cmd!.slice(1), ...args], { encoding: "utf8", timeout: 30_000 });

  it("v1 and v2 both ways; v1 byte-identical for the same key", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-espsecure-"));
    try {
      const image = new Uint8Array(7000).map((_, i) => (i * 101 + 7) & 255);
      writeFileSync(join(dir, "image.bin"), image);
      run("generate_signing_key", "--version", "1", join(dir, "k.pem"));
      const key = loadPrivateKey(join(dir, "k.pem"));
      writeFileSync(join(dir, "pub.pem"), publicKeyPem(key));
      const trusted = trustedKeyOf(loadPublicKey(join(dir, "pub.pem")));
      run("sign_data", "--version", "1", "--keyfile", join(dir, "k.pem"), "--output", join(dir, "es1.bin"), join(dir, "image.bin"));
      run("sign_data", "--version", "2", "--keyfile", join(dir, "k.pem"), "--output", join(dir, "es2.bin"), join(dir, "image.bin"));
      const es1 = new Uint8Array(readFileSync(join(dir, "es1.bin")));
      const es2 = new Uint8Array(readFileSync(join(dir, "es2.bin")));
      expect(verifySignedImage(es1, [trusted]).scheme).toBe("v1");
      expect(verifySignedImage(es2, [trusted]).scheme).toBe("v2");
      const ours1 = signV1(image, key);
      expect(Buffer.from(ours1).equals(Buffer.from(es1))).toBe(true);
      writeFileSync(join(dir, "ours1.bin"), ours1);
      writeFileSync(join(dir, "ours2.bin"), signV2(image, [key]));
      expect(run("verify_signature", "--version", "1", "--keyfile", join(dir, "pub.pem"), join(dir, "ours1.bin"))).toMatch(/Signature is valid/);
      expect(run("verify_signature", "--version", "2", "--keyfile", join(dir, "pub.pem"), join(dir, "ours2.bin"))).toMatch(/verification successful/);
      // Rotation across tools: espsecure --append_signatures adds a block to our v2 file; the device takes either key.
      run("generate_signing_key", "--version", "2", "--scheme", "ecdsa256", join(dir, "k2.pem"));
      run("sign_data", "--version", "2", "--append_signatures", "--keyfile", join(dir, "k2.pem"), "--output", join(dir, "both.bin"), join(dir, "ours2.bin"));
      const both = new Uint8Array(readFileSync(join(dir, "both.bin")));
      const k2 = trustedKeyOf(loadPrivateKey(join(dir, "k2.pem")));
      expect(verifySignedImage(both, [k2]).keyId).toBe(k2.id);
      expect(verifySignedImage(both, [trusted]).keyId).toBe(trusted.id);
      // (espsecure v4 checks only block 0 of an ECDSA sector; v5 checks all three.)
      expect(run("verify_signature", "--version", "2", "--keyfile", join(dir, "pub.pem"), join(dir, "both.bin"))).toMatch(/block 0 verification successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
