/*
 * modules/enc-stream.ts, the device's one-pass decryption of an esp_encrypted_img file, on Node's
 * GCM binding: Espressif's vectors in chunks of any size, every bad file with its code at the
 * byte where the component would stop, and a resume after a "reboot" from the plain bytes in the
 * slot and the journaled header, with no GHASH state kept.
 */
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EncStream, type EncStreamOptions } from "../../modules/enc-stream";
import { concatBytes } from "../../modules/bytes";
import { encryptImage, nodeGcmDecrypt, openGcmKey, generateDeviceKey } from "../../backend/release/encrypted-img";
import { codeOf } from "../codes";

const V = join(import.meta.dirname, "vectors/encrypted");
const read = (f: string) => new Uint8Array(readFileSync(join(V, f)));
const plain = read("plain.bin");
const keys = { rsa: readFileSync(join(V, "rsa3072.pem"), "utf8"), ecc: readFileSync(join(V, "ecc.pem"), "utf8") };
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function options(privateKey: string | ReturnType<typeof generateDeviceKey>["privateKey"], out: Uint8Array[], maxSize = 1536 * 1024): EncStreamOptions {
  return { openKey: (h) => openGcmKey(h, privateKey).key, gcm: nodeGcmDecrypt, maxSize, sink: (p) => out.push(p.slice()) };
}

/** Feed `file` in chunks of the sizes `sizes` (cycled); returns the plain bytes or throws. */
function run(file: Uint8Array, privateKey: string, sizes: number[], maxSize?: number): Uint8Array {
  const out: Uint8Array[] = [];
  const s = new EncStream(options(privateKey, out, maxSize));
  for (let at = 0, i = 0; at < file.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    s.write(file.subarray(at, at + n));
    at += n;
  }
  s.finish();
  return concatBytes(out);
}

describe("EncStream (one pass, as the device decrypts)", () => {
  it("decrypts Espressif's RSA-3072 and ECIES files and ours, in chunks of 1, 3, 16, 500, 4096 bytes and all at once", () => {
    for (const [f, k] of [["esp.rsa3072.bin", keys.rsa], ["esp.ecc.bin", keys.ecc], ["xsota.rsa3072.bin", keys.rsa], ["xsota.ecc.bin", keys.ecc]] as const) {
      for (const sizes of [[1], [3, 1, 7], [16], [500, 13], [4096], [1 << 20]]) expect([f, sizes.join(","), hex(run(read(f), k, sizes))]).toEqual([f, sizes.join(","), hex(plain)]);
    }
  });

  it("stops where the component stops: magic at byte 4, size and key at byte 512, a byte past the size at once", () => {
    const rsa = read("esp.rsa3072.bin");
    const bad = rsa.slice();
    bad[2]! ^= 1;
    const s = new EncStream(options(keys.rsa, []));
    s.write(bad.subarray(0, 3));
    expect(codeOf(() => s.write(bad.subarray(3, 4)))).toBe("ENC_MAGIC");
    const wrong = generateDeviceKey("rsa3072").privateKey;
    const w = new EncStream(options(wrong, []));
    w.write(rsa.subarray(0, 511));
    expect(codeOf(() => w.write(rsa.subarray(511, 513)))).toBe("ENC_KEY");
    expect(codeOf(() => run(rsa, keys.rsa, [64], plain.length - 1))).toBe("ENC_OVERSIZED");
    const out: Uint8Array[] = [];
    const o = new EncStream(options(keys.rsa, out));
    o.write(rsa);
    expect(codeOf(() => o.write(Uint8Array.of(0)))).toBe("ENC_OVERSIZED");
  });

  it("ends a truncated file with ENC_TRUNCATED and an altered one with ENC_TAG (ECIES with another key too)", () => {
    const ecc = read("esp.ecc.bin");
    expect(codeOf(() => run(ecc.subarray(0, ecc.length - 1), keys.ecc, [100]))).toBe("ENC_TRUNCATED");
    expect(codeOf(() => run(ecc.subarray(0, 200), keys.ecc, [100]))).toBe("ENC_TRUNCATED");
    expect(codeOf(() => run(new Uint8Array(0), keys.ecc, [1]))).toBe("ENC_TRUNCATED");
    for (const at of [408, 420, 512, ecc.length - 1]) {
      const t = ecc.slice();
      t[at]! ^= 0x40;
      expect([at, codeOf(() => run(t, keys.ecc, [77]))]).toEqual([at, "ENC_TAG"]);
    }
    const other = generateDeviceKey("ecies-p256").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(codeOf(() => run(ecc, other, [77]))).toBe("ENC_TAG");
  });

  it("resumes after a reboot from the journaled header and the plain bytes in the slot; the tag still checks", () => {
    const image = new Uint8Array(100_003).map((_, i) => (i * 13 + (i >> 8)) & 255);
    for (const scheme of ["rsa3072", "ecies-p256"] as const) {
      const k = generateDeviceKey(scheme);
      const file = encryptImage(image, { publicKey: k.publicKey });
      for (const cut of [512, 513, 512 + 16, 512 + 4097, 512 + 50_001, file.length]) {
        const slot: Uint8Array[] = [];
        const first = new EncStream(options(k.privateKey, slot));
        first.write(file.subarray(0, cut));
        const header = file.subarray(0, 512).slice(); // what the journal keeps
        const written = concatBytes(slot);
        expect(written.length).toBe(first.done);
        // reboot: the stream object is gone; the slot and the journal remain
        const rest: Uint8Array[] = [];
        const again = EncStream.resume(options(k.privateKey, rest), header, written.length, (o, n) => written.subarray(o, o + n), 1000);
        for (let at = 512 + written.length; at < file.length; at += 3001) again.write(file.subarray(at, Math.min(file.length, at + 3001)));
        again.finish();
        expect([scheme, cut, hex(concatBytes([written, ...rest])) === hex(image)]).toEqual([scheme, cut, true]);
      }
      // a slot whose bytes changed while the device was off: the tag catches it
      const slot: Uint8Array[] = [];
      const s = new EncStream(options(k.privateKey, slot));
      s.write(file.subarray(0, 30_000));
      const written = concatBytes(slot);
      written[100]! ^= 1;
      const again = EncStream.resume(options(k.privateKey, []), file.subarray(0, 512), written.length, (o, n) => written.subarray(o, o + n));
      again.write(file.subarray(512 + written.length));
      expect(codeOf(() => again.finish())).toBe("ENC_TAG");
    }
  });
});
