/*
 * An ESP32 app image signed by Espressif's espsecure.py passes the agent's own post-download
 * verification (modules/verify.ts verifySlot: SHA-256, signature, bootloader validation, app
 * descriptor), read back through the flash reader interface, as on the device.
 */
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { verifySlot, type Expectation } from "../../modules/verify";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { toHex } from "../../modules/bytes";
import { loadPublicKey, trustedKeyOf, generateKey } from "../../backend/release/keys";
import { signV1, signV2 } from "../../backend/release/espsecure";
import { minimalAppImage } from "./esp-image";
import { codeOf as code } from "../codes";

const vec = (f: string) => new Uint8Array(readFileSync(join(__dirname, "vectors", f)));
const keyA = trustedKeyOf(loadPublicKey(join(__dirname, "vectors/key-a.pub.pem")));
const keyB = trustedKeyOf(loadPublicKey(join(__dirname, "vectors/key-b.pub.pem")));

/** The file as it sits in the update slot: the download, then erased flash (0xFF) up to the slot size. */
function slot(file: Uint8Array, size = 64 * 1024): (offset: number, target: Uint8Array) => void {
  const flash = new Uint8Array(size).fill(0xff);
  flash.set(file);
  return (offset, target) => target.set(flash.subarray(offset, offset + target.length));
}

function expectation(file: Uint8Array, keys = [keyA, keyB]): Expectation {
  return { size: file.length, sha256: toHex(sha256(file)), version: "2.0.0", secureVersion: 1, antiRollback: "manifest", project: "sensor", chipId: 0, requireSignature: true, imageKeys: keys };
}

describe("espsecure-signed app images on the agent's verify path", () => {
  it("v1 and v2 files made by espsecure.py verify and validate like the bootloader", () => {
    for (const f of ["app.v1.key-a.bin", "app.v2.key-b.bin"]) {
      const file = vec(f);
      const info = verifySlot(slot(file), expectation(file), nodeCrypto, new Uint8Array(4096));
      expect(info.appDesc.version, f).toBe("2.0.0");
      expect(info.length).toBe(vec("app.bin").length);
    }
  });

  it("refuses them with the other key only, tampered, or unsigned when a signature is required", () => {
    const v1 = vec("app.v1.key-a.bin");
    const v2 = vec("app.v2.key-b.bin");
    expect(code(() => verifySlot(slot(v1), expectation(v1, [keyB]), nodeCrypto, new Uint8Array(4096)))).toBe("SIG_INVALID");
    expect(code(() => verifySlot(slot(v2), expectation(v2, [keyA]), nodeCrypto, new Uint8Array(4096)))).toBe("SIG_UNKNOWN_KEY");
    const t = new Uint8Array(v2);
    t[100] ^= 1;
    expect(code(() => verifySlot(slot(t), expectation(t), nodeCrypto, new Uint8Array(4096)))).toBe("SIG_DIGEST");
    const plain = vec("app.bin");
    expect(code(() => verifySlot(slot(plain), expectation(plain), nodeCrypto, new Uint8Array(4096)))).toBe("SIG_MISSING");
  });

  it("our own v1/v2 signatures of a fresh image pass the same path", () => {
    const k = generateKey("ecdsa-p256");
    const img = minimalAppImage({ version: "2.0.0", project: "sensor", secureVersion: 1, bodyBytes: 30_000 });
    for (const file of [signV1(img, k), signV2(img, [k])]) {
      expect(verifySlot(slot(file), expectation(file, [trustedKeyOf(k)]), nodeCrypto, new Uint8Array(4096)).length).toBe(img.length);
    }
  });
});
