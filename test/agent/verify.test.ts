/*
 * modules/verify.ts verifySlot on its own: what is in flash decides; the slot is read and hashed
 * once, signed or not, with or without an appended SHA-256; a slot that differs from the
 * manifest's SHA-256 says so (FLASH_READBACK) rather than whatever format or signature error the
 * bad bytes also cause; a bad signature outranks a format error.
 */
import { describe, expect, it } from "vitest";
import { verifySlot, secureVersionOk, type Expectation } from "../../modules/verify";
import { toHex } from "../../modules/bytes";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { buildImage } from "../../host-sim/chip/image-builder";
import { codeOf } from "../codes";
import { signV1, signV2 } from "../../backend/release/espsecure";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { validateImage } from "../../modules/image";
import type { CryptoPort } from "../../modules/ports";

const image = buildImage({ version: "1.1.0", secureVersion: 1, project: "thermo", size: 256 * 1024 });
const want: Expectation = { size: image.length, sha256: toHex(sha256(image)), version: "1.1.0", secureVersion: 1, antiRollback: "manifest", project: "thermo", chipId: 0, requireSignature: false, imageKeys: [] };

function slot(bytes: Uint8Array) {
  const flash = new Uint8Array(1536 * 1024).fill(0xff);
  flash.set(bytes);
  const stats = { bytes: 0, hashed: 0 };
  const read = (offset: number, target: Uint8Array) => {
    stats.bytes += target.length;
    target.set(flash.subarray(offset, offset + target.length));
  };
  return { read, stats };
}

/** nodeCrypto, counting the bytes hashed. */
function countingCrypto(): { crypto: CryptoPort; hashed: () => number } {
  let n = 0;
  return {
    crypto: {
      ...nodeCrypto,
      sha256: () => {
        const h = nodeCrypto.sha256();
        return { write: (d) => { n += d.byteLength; h.write(d); }, close: () => h.close(), digest: () => h.digest(), reset: () => h.reset() };
      },
    },
    hashed: () => n,
  };
}

describe("verifySlot", () => {
  it("accepts the image, reading and hashing the slot once", () => {
    const s = slot(image);
    const c = countingCrypto();
    expect(verifySlot(s.read, want, c.crypto, new Uint8Array(4096)).appDesc.version).toBe("1.1.0");
    expect(s.stats.bytes).toBeLessThan(image.length * 1.01);
    expect(c.hashed()).toBe(image.length);
  });

  it("reports FLASH_READBACK when the slot differs from the manifest, before the format errors it causes", () => {
    for (const at of [8, 0x30, 5000, image.length - 40, image.length - 1]) {
      const bad = image.slice();
      bad[at] ^= 0x10;
      expect(codeOf(() => verifySlot(slot(bad).read, want, nodeCrypto, new Uint8Array(4096))), `byte ${at}`).toBe("FLASH_READBACK");
    }
  });

  it("reports FLASH_READBACK when the slot still holds another valid image (writes that never landed)", () => {
    const older = buildImage({ version: "1.0.0", secureVersion: 1, project: "thermo", size: 256 * 1024 });
    expect(codeOf(() => verifySlot(slot(older).read, want, nodeCrypto, new Uint8Array(4096)))).toBe("FLASH_READBACK");
  });

  it("compares the slot with the manifest when the image has no appended SHA-256", () => {
    const plain = buildImage({ version: "1.1.0", secureVersion: 1, project: "thermo", size: 64 * 1024, hashAppended: false });
    const w = { ...want, size: plain.length, sha256: toHex(sha256(plain)) };
    const s = slot(plain);
    expect(verifySlot(s.read, w, nodeCrypto, new Uint8Array(4096)).header.hashAppended).toBe(false);
    expect(s.stats.bytes).toBeLessThan(plain.length * 1.01);
    // The same bit flipped in two words of a segment leaves the XOR checksum intact: only the
    // comparison with the manifest sees it.
    const bad = plain.slice();
    bad[0x1000] ^= 0x04;
    bad[0x1004] ^= 0x04;
    expect(codeOf(() => verifySlot(slot(bad).read, w, nodeCrypto, new Uint8Array(4096)))).toBe("FLASH_READBACK");
  });

  it("compares bytes after the image that no bootloader check reads", () => {
    const longer = new Uint8Array(image.length + 100).fill(0x5a);
    longer.set(image);
    const w = { ...want, size: longer.length, sha256: toHex(sha256(longer)) };
    expect(verifySlot(slot(longer).read, w, nodeCrypto, new Uint8Array(4096)).length).toBe(image.length);
    const bad = longer.slice();
    bad[longer.length - 1] ^= 1;
    expect(codeOf(() => verifySlot(slot(bad).read, w, nodeCrypto, new Uint8Array(4096)))).toBe("FLASH_READBACK");
  });

  it("secure_version: an image built without anti-rollback (0) takes the manifest's only when the floor is the agent's", () => {
    const zero = buildImage({ version: "1.1.0", secureVersion: 0, project: "thermo", size: 256 * 1024 });
    const w = { ...want, size: zero.length, sha256: toHex(sha256(zero)), secureVersion: 5 };
    expect(codeOf(() => verifySlot(slot(zero).read, w, nodeCrypto, new Uint8Array(4096)))).toBe("no error");
    expect(codeOf(() => verifySlot(slot(zero).read, { ...w, antiRollback: "efuse" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_SECURE_VERSION");
    expect(secureVersionOk(0, 0, "efuse")).toBe(true);
    expect(secureVersionOk(3, 3, "manifest")).toBe(true);
    expect(secureVersionOk(3, 4, "manifest")).toBe(false);
    expect(secureVersionOk(4, 3, "manifest")).toBe(false);
  });

  it("checks the app descriptor against the manifest", () => {
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, version: "1.2.0" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_VERSION");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, secureVersion: 2 }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_SECURE_VERSION");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, secureVersion: 2, antiRollback: "efuse" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_SECURE_VERSION");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, antiRollback: "efuse" }, nodeCrypto, new Uint8Array(4096)))).toBe("no error");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, project: "other" }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_PROJECT");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, chipId: 9 }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_CHIP");
    expect(codeOf(() => verifySlot(slot(image).read, { ...want, requireSignature: true }, nodeCrypto, new Uint8Array(4096)))).toBe("SIG_MISSING");
  });

  describe("signed images (espsecure v1 and v2)", () => {
    const key = generateKey("ecdsa-p256");
    const other = generateKey("ecdsa-p256");
    for (const scheme of ["v1", "v2"] as const) {
      const signed = scheme === "v1" ? signV1(image, key) : signV2(image, [key]);
      const w: Expectation = { ...want, size: signed.length, sha256: toHex(sha256(signed)), requireSignature: true, imageKeys: [trustedKeyOf(key)] };

      it(`${scheme}: verifies, reading and hashing the slot once for the appended SHA-256, the signature and the manifest`, () => {
        const s = slot(signed);
        const c = countingCrypto();
        expect(verifySlot(s.read, w, c.crypto, new Uint8Array(4096)).length).toBe(image.length);
        expect(c.hashed()).toBe(signed.length);
        expect(s.stats.bytes).toBeLessThan(signed.length * 1.01 + 4096);
      });

      it(`${scheme}: a key not trusted is refused, and a bad signature outranks the format error of the same image`, () => {
        expect(codeOf(() => verifySlot(slot(signed).read, { ...w, imageKeys: [trustedKeyOf(other)] }, nodeCrypto, new Uint8Array(4096)))).toMatch(/^SIG_(INVALID|UNKNOWN_KEY)$/);
        // A release whose image is broken (bad checksum) and signed by a key the device does not
        // trust: the signature is the reason given. The manifest matches the file, so no read-back error.
        const broken = image.slice();
        broken[image.length - 33] ^= 0xff; // the checksum byte, just before the appended SHA-256
        const bad = scheme === "v1" ? signV1(broken, other) : signV2(broken, [other]);
        const wb = { ...w, size: bad.length, sha256: toHex(sha256(bad)) };
        expect(codeOf(() => validateImage(slot(broken).read, broken.length, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_CHECKSUM");
        expect(codeOf(() => verifySlot(slot(bad).read, wb, nodeCrypto, new Uint8Array(4096)))).toMatch(/^SIG_(INVALID|UNKNOWN_KEY)$/);
        // Signed by the trusted key, the format error is what is left.
        const good = scheme === "v1" ? signV1(broken, key) : signV2(broken, [key]);
        expect(codeOf(() => verifySlot(slot(good).read, { ...w, size: good.length, sha256: toHex(sha256(good)) }, nodeCrypto, new Uint8Array(4096)))).toBe("IMAGE_CHECKSUM");
      });

      it(`${scheme}: any flipped byte of the slot is FLASH_READBACK`, () => {
        for (const at of [3, 0x40, 70_000, image.length - 1, image.length + 4, signed.length - 1]) {
          const bad = signed.slice();
          bad[at] ^= 0x01;
          expect(codeOf(() => verifySlot(slot(bad).read, w, nodeCrypto, new Uint8Array(4096))), `byte ${at}`).toBe("FLASH_READBACK");
        }
      });
    }
  });
});

describe("Sha256.digest (the digest so far, the hash goes on)", () => {
  it("gives each prefix's digest in one pass, then the whole", () => {
    const data = image.subarray(0, 10_000);
    const h = nodeCrypto.sha256();
    h.write(data.subarray(0, 3000));
    expect(toHex(h.digest())).toBe(toHex(sha256(data.subarray(0, 3000))));
    h.write(data.subarray(3000, 7001));
    expect(toHex(h.digest())).toBe(toHex(sha256(data.subarray(0, 7001))));
    h.write(data.subarray(7001));
    expect(toHex(h.close())).toBe(toHex(sha256(data)));
  });
});
