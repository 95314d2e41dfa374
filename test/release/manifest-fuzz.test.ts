import { describe, it, expect } from "vitest";
import { verifyManifest, parseEnvelope } from "../../modules/manifest";
import { OtaError } from "../../modules/errors";
import { toBase64, utf8Encode } from "../../modules/bytes";
import { nodeCrypto } from "../../backend/crypto";
import { generateKey, trustedKeyOf, signMessage } from "../../backend/release/keys";
import { createManifest, signPayload } from "../../backend/release/manifest-tool";

/** mulberry32: a small seeded PRNG, so a failure is reproducible from the seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

const ec = generateKey("ecdsa-p256");
const rsa = generateKey("rsa-2048");
const keys = [trustedKeyOf(ec), trustedKeyOf(rsa)];
// A hang guard, not a benchmark: one input taking seconds means a pathological parse path.
// Wall-clock bound is loose because the suite shares two cores with everything else.
const HANG_GUARD_MS = 2000;
const image = new Uint8Array(4096).fill(7);
const delta = { from: { version: "1.2.2", size: 4096, sha256: "ab".repeat(32) }, url: "https://h/d.bin", size: 300, sha256: "cd".repeat(32), compression: "heatshrink" as const };
const valid = createManifest({ product: "sensor", version: "1.2.3", secureVersion: 2, url: "https://h/i.bin", image, groups: ["a", "b"], rollout: { id: "r", percent: 50 }, deltas: [delta], keys: [ec, rsa] });
const signedPayload = Buffer.from(parseEnvelope(valid).payload);

const TOKENS = ["{", "}", "[", "]", ",", ":", '"', "\\", "null", "true", "1e999", "-0", "\u0000", "\uffff", '"payload"', '"signatures"', '"__proto__"', "AAAA", "=", "\xff"];

/** Run one input: it must be refused with an OtaError, or accepted with exactly the signed payload. */
function check(bytes: Uint8Array, stats: { accepted: number; codes: Map<string, number>; slowest: number }): void {
  const t0 = performance.now();
  try {
    const out = verifyManifest(bytes, keys, nodeCrypto);
    stats.accepted++;
    expect(Buffer.from(out.payload).equals(signedPayload)).toBe(true);
    expect(out.manifest.version).toBe("1.2.3");
  } catch (e) {
    if (!(e instanceof OtaError)) throw new Error(`non-OtaError ${String(e)} for input ${Buffer.from(bytes).toString("latin1").slice(0, 200)}`);
    stats.codes.set(e.code, (stats.codes.get(e.code) ?? 0) + 1);
  }
  stats.slowest = Math.max(stats.slowest, performance.now() - t0);
}

function mutate(r: ReturnType<typeof rng>, src: Uint8Array): Uint8Array {
  let b = Array.from(src);
  const rounds = 1 + r.int(4);
  for (let i = 0; i < rounds; i++) {
    const at = r.int(b.length + 1);
    switch (r.int(6)) {
      case 0: if (at < b.length) b[at] = b[at]! ^ (1 << r.int(8)); break;
      case 1: b.splice(at, 1 + r.int(8)); break;
      case 2: b.splice(at, 0, ...utf8Encode(r.pick(TOKENS))); break;
      case 3: if (at < b.length) b[at] = r.int(256); break;
      case 4: { const s = r.int(b.length), n = r.int(64); b.splice(at, 0, ...b.slice(s, s + n)); break; }
      default: b = b.slice(0, at); break;
    }
  }
  return Uint8Array.from(b);
}

describe("manifest fuzz (seeded)", () => {
  it("random bytes and random JSON-ish text: refused with OtaError, quickly", () => {
    const r = rng(1);
    const stats = { accepted: 0, codes: new Map<string, number>(), slowest: 0 };
    for (let i = 0; i < 1500; i++) {
      const len = r.pick([0, 1, 2, 10, 100, 1000, 8192, 8193, 20000]);
      const b = new Uint8Array(Math.min(len, r.int(len + 1) + 1));
      if (i % 2) for (let j = 0; j < b.length; j++) b[j] = r.int(256);
      else {
        let s = "";
        while (s.length < b.length) s += r.pick(TOKENS);
        b.set(utf8Encode(s).subarray(0, b.length));
      }
      check(b, stats);
    }
    expect(stats.accepted).toBe(0);
    expect(stats.slowest).toBeLessThan(HANG_GUARD_MS);
  });

  it("byte-level mutations of a valid two-signature envelope: never accepted unless the signed payload survives", () => {
    const r = rng(2);
    const stats = { accepted: 0, codes: new Map<string, number>(), slowest: 0 };
    for (let i = 0; i < 2500; i++) check(mutate(r, valid), stats);
    // Mutations in the JSON envelope around an intact payload and one intact signature may pass;
    // everything else must be refused, with more than one distinct code exercised.
    expect(stats.codes.size).toBeGreaterThanOrEqual(4);
    expect(stats.slowest).toBeLessThan(HANG_GUARD_MS);
  });

  it("payload mutated but not re-signed: always SIG_INVALID or a structure error", () => {
    const r = rng(3);
    const env = parseEnvelope(valid);
    for (let i = 0; i < 800; i++) {
      const p = mutate(r, env.payload);
      if (Buffer.from(p).equals(signedPayload)) continue;
      const bytes = utf8Encode(JSON.stringify({ payload: toBase64(p), signatures: env.signatures.map((s) => ({ keyId: s.keyId, alg: s.alg, sig: toBase64(s.sig) })) }));
      let code = "accepted";
      try {
        verifyManifest(bytes, keys, nodeCrypto);
      } catch (e) {
        if (!(e instanceof OtaError)) throw e;
        code = e.code;
      }
      expect(["SIG_INVALID", "MANIFEST_TOO_LARGE", "MANIFEST_FIELD"]).toContain(code);
    }
  });

  it("signed but hostile payloads (wrong types, huge, deep, odd values): refused with MANIFEST_* or accepted well-typed", () => {
    const r = rng(4);
    const values: unknown[] = [null, true, 0, -1, 1.5, 1e308, "", "x".repeat(3000), [], {}, [1, 2], { id: 1 }, "1.2.3", "01.2.3", "https://x", -0, 2 ** 53, "é", [delta], [delta, delta, delta, delta, delta], [{ ...delta, compression: "lzma" }]];
    const fields = ["schema", "product", "version", "secureVersion", "url", "size", "sha256", "chip", "hardware", "groups", "regions", "rollout", "force", "minVersion", "notBefore", "expires", "channel", "signedImage", "notes", "deltas", "unknown"];
    const base = JSON.parse(signedPayload.toString("utf8")) as Record<string, unknown>;
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const doc: Record<string, unknown> = { ...base };
      for (let j = 0; j < 1 + r.int(3); j++) doc[r.pick(fields)] = r.pick(values);
      let payload = utf8Encode(JSON.stringify(doc));
      if (i % 50 === 0) payload = utf8Encode("[".repeat(200) + "]".repeat(200));
      let env: Uint8Array;
      try {
        env = signPayload(payload, [i % 2 ? ec : rsa]);
      } catch (e) {
        expect((e as OtaError).code).toBe("MANIFEST_TOO_LARGE");
        continue;
      }
      try {
        const { manifest } = verifyManifest(env, keys, nodeCrypto);
        accepted++;
        expect(manifest.schema).toBe(1);
        expect(typeof manifest.product).toBe("string");
        expect(Number.isInteger(manifest.size)).toBe(true);
        expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
        if (manifest.hardware) expect(manifest.hardware.every((h) => typeof h === "string")).toBe(true);
        for (const d of manifest.deltas ?? []) expect(d).toEqual(delta);
        expect(Object.keys(manifest)).not.toContain("unknown");
      } catch (e) {
        if (!(e instanceof OtaError)) throw e;
        expect(e.code).toMatch(/^MANIFEST_(FIELD|SYNTAX)$/);
      }
    }
    expect(accepted).toBeGreaterThan(0);
    // One more: a correct signature over a payload of the right shape by a key that is not trusted.
    const stranger = generateKey("ecdsa-p256");
    const p = parseEnvelope(valid).payload;
    const foreign = utf8Encode(JSON.stringify({ payload: toBase64(p), signatures: [{ keyId: stranger.id, alg: "ES256", sig: toBase64(signMessage(stranger, p)) }] }));
    expect(() => verifyManifest(foreign, keys, nodeCrypto)).toThrow(/SIG_UNKNOWN_KEY/);
  });
});

describe("manifest deltas", () => {
  const base = JSON.parse(signedPayload.toString("utf8")) as Record<string, unknown>;
  const verify = (deltas: unknown) => verifyManifest(signPayload(utf8Encode(JSON.stringify({ ...base, deltas })), [ec]), keys, nodeCrypto).manifest;

  it("a signed delta comes out exactly, and a change to any of its bytes breaks the signature", () => {
    expect(verifyManifest(valid, keys, nodeCrypto).manifest.deltas).toEqual([delta]);
    const env = parseEnvelope(valid);
    const text = Buffer.from(env.payload).toString("utf8").replace('"heatshrink"', '"none"');
    const forged = utf8Encode(JSON.stringify({ payload: toBase64(utf8Encode(text)), signatures: env.signatures.map((s) => ({ keyId: s.keyId, alg: s.alg, sig: toBase64(s.sig) })) }));
    expect(() => verifyManifest(forged, keys, nodeCrypto)).toThrow(/SIG_INVALID/);
  });

  it("every delta field is type- and size-checked, and named in the code's detail", () => {
    const bad: [unknown, string][] = [
      [{ ...delta, from: undefined }, "deltas[0].from"],
      [{ ...delta, from: { ...delta.from, version: "1.2" } }, "deltas[0].from.version"],
      [{ ...delta, from: { ...delta.from, size: 0 } }, "deltas[0].from.size"],
      [{ ...delta, from: { ...delta.from, size: 17 * 1024 * 1024 } }, "deltas[0].from.size"],
      [{ ...delta, from: { ...delta.from, sha256: "AB".repeat(32) } }, "deltas[0].from.sha256"],
      [{ ...delta, url: "" }, "deltas[0].url"],
      [{ ...delta, url: "https://h/a b" }, "deltas[0].url"],
      [{ ...delta, url: "x".repeat(1025) }, "deltas[0].url"],
      [{ ...delta, size: 1.5 }, "deltas[0].size"],
      [{ ...delta, sha256: "cd" }, "deltas[0].sha256"],
      [{ ...delta, compression: "lzma" }, "deltas[0].compression"],
      ["x", "deltas[0]"],
      [null, "deltas[0]"],
    ];
    for (const [d, field] of bad) {
      expect(() => verify([d]), field).toThrow(OtaError);
      try {
        verify([d]);
      } catch (e) {
        expect((e as OtaError).code).toBe("MANIFEST_FIELD");
        expect((e as OtaError).detail.startsWith(`${field}:`), `${field}: ${(e as OtaError).detail}`).toBe(true);
      }
    }
    expect(() => verify([delta, delta, delta, delta, delta])).toThrow(/deltas/);
    expect(() => verify({})).toThrow(/deltas/);
    expect(verify([delta, { ...delta, compression: "none", extra: 1 }]).deltas).toEqual([delta, { ...delta, compression: "none" }]);
  });
});
