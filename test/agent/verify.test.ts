/*
 * modules/verify.ts verifySlot on its own: what is in flash decides, the slot is read about
 * once, and a slot that differs from the manifest's SHA-256 says so (FLASH_READBACK) rather
 * than whatever format error the bad bytes also cause.
 */
import { describe, expect, it } from "vitest";
import { verifySlot, type Expectation } from "../../modules/verify";
import { toHex } from "../../modules/bytes";
import { nodeCrypto, sha256 } from "../../host-sim/crypto";
import { buildImage } from "../../host-sim/image-builder";
import { codeOf } from "../codes";

const image = buildImage({ version: "1.1.0", secureVersion: 1, project: "thermo", size: 256 * 1024 });
const want: Expectation = { size: image.length, sha256: toHex(sha256(image)), version: "1.1.0", secureVersion: 1, project: "thermo", chipId: 0, requireSignature: false, imageKeys: [] };

function slot(bytes: Uint8Array) {
  const flash = new Uint8Array(1536 * 1024).fill(0xff);
  flash.set(bytes);
  const stats = { bytes: 0 };
  const read = (offset: number, target: Uint8Array) => {
    stats.bytes += target.length;
    target.set(flash.subarray(offset, offset + target.length));
  };
  return { read, stats };
}

describe("verifySlot", () => {
  it("accepts the image and reads the slot about once (read-back hash shares the validator's reads)", () => {
    const s = slot(image);
    expect(verifySlot(s.read, want, nodeCrypto, new Uint8Array(4096)).appDesc.version).toBe("1.1.0");
    expect(s.stats.bytes).toBeLessThan(image.length * 1.1);
  });

  it("reports FLASH_READBACK when the slot differs from the manifest, before the format errors it causes", () => {
    for (const at of [8, 0x30, 5000, image.length - 40, image.length - 1]) {
      const bad = image.slice();
      bad[at] ^= 0x10;
      expect(codeOf(() => verifySlot(slot(bad).read, want, nodeCrypto, new Uint8Array(4096))), `byte ${at}`).toBe("FLASH_READBACK");
    }
  });

  it("checks the app descriptor against the manifest", () => {
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, version: "1.2.0" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_VERSION");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, secureVersion: 2 }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_VERSION");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, project: "other" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_PROJECT");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, chipId: 9 }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_CHIP");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, requireSignature: true }, nodeCrypto, new Uint8Array(4096)))).toBe("SIG_MISSING");
  });
});
