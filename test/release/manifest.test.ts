import { describe, it, expect } from "vitest";
import { verifyManifest, parseEnvelope } from "../../modules/manifest";
import { toBase64, utf8Encode, utf8Decode } from "../../modules/bytes";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { generateKey, trustedKeyOf, signMessage } from "../../backend/release/keys";
import { createManifest, addSignature, signPayload, inspectEnvelope } from "../../backend/release/manifest-tool";
import { codeOf } from "../codes";

const ec = generateKey("ecdsa-p256");
const ec2 = generateKey("ecdsa-p256");
const rsa = generateKey("rsa-2048");
const image = new Uint8Array(5000).map((_, i) => (i * 7) & 255);
const base = { product: "sensor", version: "2.1.3", secureVersion: 1, url: "https://127.0.0.1/images/x.bin", image };

describe("signed manifest", () => {
  it("round-trips ES256 and RS256 with the key id, size and SHA-256 of the image", () => {
    for (const k of [ec, rsa]) {
      const env = createManifest({ ...base, keys: [k], hardware: ["esp32-rev3"], rollout: { id: "r1", percent: 5 }, expires: 1_900_000_000_000 });
      const out = verifyManifest(env, [trustedKeyOf(k)], nodeCrypto);
      expect(out.keyId).toBe(k.id);
      expect(out.manifest).toMatchObject({ schema: 1, product: "sensor", version: "2.1.3", size: 5000, hardware: ["esp32-rev3"], rollout: { id: "r1", percent: 5 } });
      expect(out.manifest.sha256).toBe(Buffer.from(sha256(image)).toString("hex"));
      expect(inspectEnvelope(env).signatures[0]!.alg).toBe(k.type === "rsa-2048" ? "RS256" : "ES256");
    }
  });

  it("rotation: several signatures, any trusted one suffices; revoked and unknown keys are refused", () => {
    const env = addSignature(createManifest({ ...base, keys: [ec] }), ec2);
    expect(parseEnvelope(env).signatures.map((s) => s.keyId)).toEqual([ec.id, ec2.id]);
    expect(verifyManifest(env, [trustedKeyOf(ec2)], nodeCrypto).keyId).toBe(ec2.id);
    expect(verifyManifest(env, [trustedKeyOf(ec, true), trustedKeyOf(ec2)], nodeCrypto).keyId).toBe(ec2.id);
    const old = createManifest({ ...base, keys: [ec] });
    expect(codeOf(() => verifyManifest(old, [trustedKeyOf(ec, true), trustedKeyOf(ec2)], nodeCrypto))).toBe("SIG_REVOKED_KEY");
    expect(codeOf(() => verifyManifest(old, [trustedKeyOf(rsa)], nodeCrypto))).toBe("SIG_UNKNOWN_KEY");
    expect(codeOf(() => verifyManifest(old, [], nodeCrypto))).toBe("SIG_UNKNOWN_KEY");
  });

  it("a key id claimed by the wrong key, or an alg that does not match the key, is SIG_INVALID", () => {
    const forged = createManifest({ ...base, keys: [ec2], keyIds: [ec.id] });
    expect(codeOf(() => verifyManifest(forged, [trustedKeyOf(ec)], nodeCrypto))).toBe("SIG_INVALID");
    const payload = parseEnvelope(forged).payload;
    const wrongAlg = utf8Encode(JSON.stringify({ payload: toBase64(payload), signatures: [{ keyId: rsa.id, alg: "ES256", sig: toBase64(signMessage(rsa, payload)) }] }));
    expect(codeOf(() => verifyManifest(wrongAlg, [trustedKeyOf(rsa)], nodeCrypto))).toBe("SIG_INVALID");
  });

  it("any changed payload byte is refused", () => {
    const env = createManifest({ ...base, keys: [ec] });
    const { payload, signatures } = parseEnvelope(env);
    for (let i = 0; i < payload.length; i += 3) {
      const p = new Uint8Array(payload);
      p[i] ^= 0x20;
      const e = utf8Encode(JSON.stringify({ payload: toBase64(p), signatures: signatures.map((s) => ({ keyId: s.keyId, alg: s.alg, sig: toBase64(s.sig) })) }));
      expect(codeOf(() => verifyManifest(e, [trustedKeyOf(ec)], nodeCrypto))).toMatch(/^(SIG_INVALID)$/);
    }
  });

  it("names each malformed case", () => {
    const keys = [trustedKeyOf(ec)];
    const sig = (p: Uint8Array) => [{ keyId: ec.id, alg: "ES256", sig: toBase64(signMessage(ec, p)) }];
    const signed = (payloadText: string) => {
      const p = utf8Encode(payloadText);
      return utf8Encode(JSON.stringify({ payload: toBase64(p), signatures: sig(p) }));
    };
    const good = JSON.parse(utf8Decode(parseEnvelope(createManifest({ ...base, keys: [ec] })).payload));
    const cases: Array<[string, Uint8Array]> = [
      ["MANIFEST_TOO_LARGE", new Uint8Array(8193).fill(0x20)],
      ["MANIFEST_SYNTAX", utf8Encode("{not json")],
      ["MANIFEST_SYNTAX", Uint8Array.from([0x7b, 0xff, 0x7d])],
      ["MANIFEST_SYNTAX", utf8Encode("[".repeat(50) + "]".repeat(50))],
      ["MANIFEST_FIELD", utf8Encode("[]")],
      ["MANIFEST_FIELD", utf8Encode('{"payload":5,"signatures":[]}')],
      ["MANIFEST_UNSIGNED", utf8Encode(`{"payload":"${toBase64(utf8Encode("{}"))}"}`)],
      ["MANIFEST_UNSIGNED", utf8Encode(`{"payload":"${toBase64(utf8Encode("{}"))}","signatures":[]}`)],
      ["MANIFEST_FIELD", utf8Encode(`{"payload":"${toBase64(utf8Encode("{}"))}","signatures":{}}`)],
      ["MANIFEST_FIELD", utf8Encode(`{"payload":"${toBase64(utf8Encode("{}"))}","signatures":[{"keyId":"a b","alg":"ES256","sig":"AA=="}]}`)],
      ["MANIFEST_FIELD", utf8Encode(`{"payload":"${toBase64(utf8Encode("{}"))}","signatures":[{"keyId":"ab","alg":"PS256","sig":"AA=="}]}`)],
      ["MANIFEST_FIELD", utf8Encode(`{"payload":"%%%","signatures":[{"keyId":"ab","alg":"ES256","sig":"AA=="}]}`)],
      ["MANIFEST_SYNTAX", signed("{oops")],
      ["MANIFEST_FIELD", signed("[1]")],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, schema: 2 }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, version: "2.1" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, size: -1 }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, size: 1.5 }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, sha256: "ABC" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, secureVersion: "1" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, hardware: "esp32" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, groups: new Array(40).fill("g") }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, rollout: { id: "r", percent: 101 } }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, force: "yes" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, expires: "2027-01-01" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, url: "https://a b" }))],
      ["MANIFEST_FIELD", signed(JSON.stringify({ ...good, product: "x".repeat(65) }))],
    ];
    for (const [code, bytes] of cases) expect(codeOf(() => verifyManifest(bytes, keys, nodeCrypto)), Buffer.from(bytes.subarray(0, 60)).toString("latin1")).toBe(code);
  });

  it("ignores unknown fields, including __proto__, and keeps only known ones", () => {
    const p = utf8Encode(JSON.stringify({ schema: 1, product: "sensor", version: "1.0.0", secureVersion: 0, url: "u", size: 1, sha256: "0".repeat(64), metaVersion: 5, expires: 2e12, channel: "stable", extra: { a: 1 } }).replace("{", '{"__proto__":{"polluted":true},'));
    const env = signPayload(p, [ec]);
    const out = verifyManifest(env, [trustedKeyOf(ec)], nodeCrypto);
    expect(Object.keys(out.manifest).sort()).toEqual(["channel", "expires", "metaVersion", "product", "schema", "secureVersion", "sha256", "size", "url", "version"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((out.manifest as unknown as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("the tool refuses to sign what a device would refuse", () => {
    expect(codeOf(() => createManifest({ ...base, version: "two", keys: [ec] }))).toBe("MANIFEST_FIELD");
    expect(codeOf(() => createManifest({ ...base, notes: "x".repeat(5000), keys: [ec] }))).toBe("MANIFEST_FIELD");
    expect(codeOf(() => createManifest({ ...base, keys: [] }))).toBe("MANIFEST_UNSIGNED");
  });
});

describe("names that become paths on the update host", () => {
  it("refuses '.', '..' and names starting with a dot or dash", () => {
    const k = generateKey("ecdsa-p256");
    for (const bad of [".", "..", ".hidden", "-x"]) {
      expect(codeOf(() => createManifest({ ...base, product: bad, keys: [k] })), bad).toBe("MANIFEST_FIELD");
      expect(codeOf(() => createManifest({ ...base, channel: bad, keys: [k] })), bad).toBe("MANIFEST_FIELD");
    }
  });
});
