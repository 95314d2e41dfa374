/*
 * The device's esp_encrypted_img pieces (header, PKCS#1 v1.5 unwrap check, inc32 counter blocks,
 * HMAC/HKDF/PBKDF2, P-256 point check) inside the real XS engine give exactly the answers they
 * give under Node, on the committed vectors made by Espressif's tool and on bad inputs. SHA-256
 * is bridged to nodeCrypto (native on the chip).
 */
import { describe, it, expect } from "vitest";
import { build } from "esbuild";
import { constants, createPrivateKey, privateDecrypt } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { XsWorker } from "../../host-sim/engines/xs/worker";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { toBase64 } from "../../modules/bytes";
import { runEncCases, type EncCases } from "./xs/enc-guest";

const V = join(import.meta.dirname, "vectors/encrypted");
const read = (f: string) => new Uint8Array(readFileSync(join(V, f)));

describe("esp_encrypted_img device pieces in XS and Node agree", () => {
  it("on Espressif's vectors and bad inputs", async () => {
    const code = (await build({ entryPoints: [join(import.meta.dirname, "xs/enc-guest.ts")], bundle: true, platform: "neutral", format: "iife", write: false, target: "es2022" })).outputFiles[0]!.text;
    const worker = new XsWorker({ handleCommand: (req: Uint8Array) => sha256(req) });
    try {
      await worker.evaluate(code);
      const files = ["esp.rsa3072.bin", "esp.ecc.bin", "xsota.ecc.bin"].map(read);
      const flipped = files[0]!.slice();
      flipped[0]! ^= 1;
      const rsaKey = createPrivateKey(readFileSync(join(V, "rsa3072.pem"), "utf8"));
      const em = new Uint8Array(privateDecrypt({ key: rsaKey, padding: constants.RSA_NO_PADDING }, files[0]!.subarray(4, 388)));
      const shortPad = em.slice();
      shortPad[5] = 0; // the separator inside the 8-byte minimum padding
      const req: EncCases = {
        files: [...files, flipped, files[1]!.subarray(0, 300)].map((f) => toBase64(f)),
        hmacKey: toBase64(read("ecc.hmac.bin")),
        ems: [em, shortPad, em.subarray(1)].map((e) => toBase64(e)),
        j0: toBase64(Uint8Array.from(Buffer.from("0123456789abcdef01234567fffffff9", "hex"))),
      };
      const reply = await worker.command(new Uint8Array(Buffer.from(JSON.stringify(req))));
      const xs = JSON.parse(Buffer.from(reply.reply).toString()) as string[];
      const node = runEncCases(req, nodeCrypto);
      expect(xs).toEqual(node);
      const jwk = createPrivateKey(readFileSync(join(V, "ecc.pem"), "utf8")).export({ format: "jwk" });
      expect(node).toContain("scalar:" + Buffer.from(jwk.d!, "base64url").toString("hex"));
      expect(node.filter((l) => l.startsWith("hdr:1360:")).map((l) => l.endsWith(":true"))).toEqual([false, true, true]);
      expect(node.filter((l) => l.startsWith("key:")).length).toBe(1);
      expect(node.filter((l) => l === "err:ENC_KEY").length).toBe(2);
      expect(node.filter((l) => l === "err:ENC_MAGIC").length).toBe(2);
      expect(node.filter((l) => l === "err:ENC_TRUNCATED").length).toBe(2);
      expect(node).toContain("ctr:6:0123456789abcdef0123456700000000:4294967296");
      expect(node.some((l) => l.includes("NON-OTA"))).toBe(false);
    } finally {
      await worker.close();
    }
  }, 120_000);
});
