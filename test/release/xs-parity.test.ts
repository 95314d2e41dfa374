/*
 * The device-side verifiers (modules/manifest.ts, sigblock.ts, keys.ts, semver.ts) inside the
 * real XS engine give exactly the answers they give under Node, on valid, mutated and
 * espsecure-made inputs. Crypto is bridged to nodeCrypto (as on the chip it is native).
 */
import { describe, it, expect } from "vitest";
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { XsWorker } from "../../host-sim/engines/xs/worker";
import { nodeCrypto } from "../../backend/crypto";
import { fromBase64, toBase64 } from "../../modules/bytes";
import { generateKey, keyConfigOf, loadPublicKey, signMessage } from "../../backend/release/keys";
import { createManifest, signPayload } from "../../backend/release/manifest-tool";
import { signV1, signV2 } from "../../backend/release/espsecure";
import { verifyManifest } from "../../modules/manifest";
import { verifyImageSignature } from "../../modules/sigblock";
import { keyFromConfig } from "../../modules/keys";
import { compareSemver } from "../../modules/semver";

type Case = { kind: "manifest"; b64: string } | { kind: "image"; b64: string } | { kind: "semver"; a: string; b: string };

function bridge(req: Uint8Array): Uint8Array {
  const dv = new DataView(req.buffer, req.byteOffset, req.byteLength);
  const a: Uint8Array[] = [];
  for (let o = 1; o < req.length; ) {
    const n = dv.getUint32(o, true);
    a.push(req.slice(o + 4, o + 4 + n));
    o += 4 + n;
  }
  if (req[0] === 0) {
    const h = nodeCrypto.sha256();
    a.forEach((x) => h.write(x));
    return h.close();
  }
  if (req[0] === 1) return Uint8Array.of(nodeCrypto.verifyEcdsaP256(a[0]!, a[1]!, a[2]!) ? 1 : 0);
  return Uint8Array.of(nodeCrypto.verifyRsaPkcs1Sha256(a[0]!, a[1]!, a[2]!, a[3]!) ? 1 : 0);
}

describe("device verifiers in XS and Node agree", () => {
  it("on manifests, image signatures and versions, valid and hostile", async () => {
    const code = (await build({ entryPoints: [join(__dirname, "xs/guest.ts")], bundle: true, platform: "neutral", format: "iife", write: false, target: "es2022" })).outputFiles[0]!.text;
    const worker = new XsWorker({ handleCommand: bridge });
    try {
      await worker.evaluate(code);
      const ec = generateKey("ecdsa-p256");
      const rsa = generateKey("rsa-2048");
      const vec = (f: string) => new Uint8Array(readFileSync(join(__dirname, "vectors", f)));
      const keyCfgs = [keyConfigOf(ec), keyConfigOf(rsa), keyConfigOf(loadPublicKey(join(__dirname, "vectors/key-a.pub.pem"))), keyConfigOf(loadPublicKey(join(__dirname, "vectors/key-b.pub.pem")), true)];
      const image = new Uint8Array(3000).fill(3);
      const valid = createManifest({ product: "p", version: "1.2.3-rc.1+b", secureVersion: 1, url: "https://x/y", image, keys: [ec, rsa], notes: "héllo ✓ 𝄞" });
      let seed = 42;
      const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
      const cases: Case[] = [{ kind: "manifest", b64: toBase64(valid) }];
      for (let i = 0; i < 40; i++) {
        const b = new Uint8Array(valid);
        for (let j = 0; j < 1 + rnd(3); j++) b[rnd(b.length)] = rnd(256);
        cases.push({ kind: "manifest", b64: toBase64(b) });
      }
      const proto = Buffer.from('{"schema":1,"__proto__":{"x":1}}');
      for (const t of ["[1]", "{", '{"payload":"","signatures":[]}', "[".repeat(300), '"\\ud800"', JSON.stringify({ payload: toBase64(proto), signatures: [{ keyId: ec.id, alg: "ES256", sig: toBase64(signMessage(ec, proto)) }] })])
        cases.push({ kind: "manifest", b64: toBase64(Buffer.from(t)) });
      const odd = Buffer.from(JSON.stringify({ schema: 1, product: "p", version: "1.0.0", secureVersion: 0, url: "u", size: 1, sha256: "a".repeat(64), notes: "\u0000\u2028" }));
      cases.push({ kind: "manifest", b64: toBase64(signPayload(odd, [ec])) });
      for (const f of ["image.v1.key-a.bin", "image.v2.key-b.bin", "image.v2.key-a+b.bin"]) cases.push({ kind: "image", b64: toBase64(vec(f)) });
      for (const f of [signV1(image, ec), signV2(image, [ec])]) {
        cases.push({ kind: "image", b64: toBase64(f) });
        // An image byte, the v1 signature, a v2 block field, the v2 block CRC, the 0xFF rest of the sector.
        for (const at of [100, f.length - 40, f.length - 4096 + 10, f.length - 4096 + 1197, f.length - 100]) {
          const t = new Uint8Array(f);
          t[at] ^= 1 << rnd(8);
          cases.push({ kind: "image", b64: toBase64(t) });
        }
      }
      for (const [a, b] of [["1.0.0-alpha", "1.0.0-alpha.1"], ["1.0.0-beta.11", "1.0.0-beta.2"], ["2.0.0", "10.0.0"], ["1.0.0+a", "1.0.0+b"]]) cases.push({ kind: "semver", a: a!, b: b! });

      const reply = await worker.command(new Uint8Array(Buffer.from(JSON.stringify({ keys: keyCfgs, cases }))));
      const xs = JSON.parse(Buffer.from(reply.reply).toString()) as string[];
      const keys = keyCfgs.map((k) => keyFromConfig(k, nodeCrypto));
      const node = cases.map((c) => {
        try {
          if (c.kind === "manifest") {
            const o = verifyManifest(fromBase64(c.b64), keys, nodeCrypto);
            return `ok:${o.keyId}:${o.manifest.version}`;
          }
          if (c.kind === "image") {
            const f = fromBase64(c.b64);
            const o = verifyImageSignature((off, t) => t.set(f.subarray(off, off + t.length)), f.length, keys, nodeCrypto, new Uint8Array(1024));
            return `ok:${o.scheme}:${o.keyId}:${o.imageLength}`;
          }
          return `cmp:${compareSemver(c.a, c.b)}`;
        } catch (e) {
          return `err:${(e as { code?: string }).code ?? "NON-OTA " + String(e)}`;
        }
      });
      expect(xs).toEqual(node);
      expect(reply.meter.compute).toBeGreaterThan(0);
      const kinds = new Set(node.map((n) => n.replace(/:[0-9a-f]{16}.*$/, "").replace(/:\d.*$/, "")));
      for (const k of ["ok", "ok:v1", "ok:v2", "err:MANIFEST_SYNTAX", "err:MANIFEST_FIELD", "err:SIG_INVALID", "err:SIG_DIGEST", "err:SIG_REVOKED_KEY"]) expect(kinds, k).toContain(k);
      expect(node.some((n) => n.startsWith("err:NON-OTA"))).toBe(false);
    } finally {
      await worker.close();
    }
  });
});
