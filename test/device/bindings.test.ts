/*
 * The pure parts of the Moddable bindings, run under Node: the PUBACK watch that gives the
 * device its onPublished (fed real MQTT bytes from mqtt-packet, split at every offset), and the
 * URL split that refuses anything but https: before a socket exists.
 */
import { describe, expect, it } from "vitest";
import * as mqtt from "mqtt-packet";
import { PubackScanner } from "../../src/mqtt-frames";
import { parseHttpsUrl } from "../../src/url";
import { OtaError } from "../../modules/errors";
import { P256_N, basicConstraintsCa, bigintToBytes, p256ScalarsInRange, pkcs1Sha256Block, sanMatches } from "../../src/signature-checks";
import { drainFragment } from "../../src/http-drain";
import { createHash, generateKeyPairSync, sign } from "node:crypto";

const b64uInt = (s: string) => BigInt("0x" + Buffer.from(s, "base64url").toString("hex"));
function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

const gen = (p: mqtt.Packet) => new Uint8Array(mqtt.generate(p));

function stream(): { bytes: Uint8Array; acks: number[] } {
  const big = new Uint8Array(20_000).fill(0x40); // 0x40 bytes inside a payload must not look like PUBACKs
  const parts = [
    gen({ cmd: "connack", returnCode: 0, sessionPresent: false }),
    gen({ cmd: "puback", messageId: 2 }),
    gen({ cmd: "publish", topic: "devices/x/cmd", payload: Buffer.from(big), qos: 0, dup: false, retain: false }),
    gen({ cmd: "suback", messageId: 3, granted: [0] }),
    gen({ cmd: "puback", messageId: 0x1234 }),
    gen({ cmd: "pingresp" }),
    gen({ cmd: "publish", topic: "t", payload: Buffer.alloc(0), qos: 0, dup: false, retain: true }),
    gen({ cmd: "puback", messageId: 65535 }),
  ];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { bytes.set(p, o); o += p.length; }
  return { bytes, acks: [2, 0x1234, 65535] };
}

describe("PubackScanner (src/mqtt-frames.ts)", () => {
  it("reports exactly the PUBACK ids, in order, however the stream is split into reads", () => {
    const { bytes, acks } = stream();
    const cuts = [0, 1, 2, 3, 4, 5, 6, 7, 9, 13, 100, 4095, 20_010, bytes.length - 3, bytes.length - 1];
    for (const a of cuts) for (const b of [a + 1, a + 2, a + 5]) {
      const got: number[] = [];
      const s = new PubackScanner((id) => got.push(id));
      s.scan(bytes.subarray(0, a));
      s.scan(bytes.subarray(a, Math.min(b, bytes.length)));
      s.scan(bytes.subarray(Math.min(b, bytes.length)));
      expect(got, `cut at ${a}/${b}`).toEqual(acks);
    }
    const got: number[] = [];
    const s = new PubackScanner((id) => got.push(id));
    for (let i = 0; i < bytes.length; i++) s.scan(bytes.subarray(i, i + 1));
    expect(got).toEqual(acks);
  });

  it("rejects a remaining length longer than four bytes", () => {
    const s = new PubackScanner(() => {});
    expect(() => s.scan(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01))).toThrow(RangeError);
  });

  it("with a bound, refuses a packet over it from its header alone, before any of its body; one at the bound passes", () => {
    const got: number[] = [];
    const s = new PubackScanner((id) => got.push(id), 16);
    s.scan(Uint8Array.of(0x30, 16, ...new Uint8Array(16))); // a PUBLISH of exactly 16
    s.scan(gen({ cmd: "puback", messageId: 9 }));
    expect(got).toEqual([9]);
    // 200 MB claimed in the 4-byte remaining length: refused with only the header read
    const huge = new PubackScanner(() => {}, 16);
    expect(() => huge.scan(Uint8Array.of(0x30, 0x80, 0x80, 0xe8, 0x5f))).toThrow(/packet of 200933376 bytes \(at most 16\)/);
    expect(() => new PubackScanner(() => {}, 16).scan(Uint8Array.of(0x30, 17))).toThrow(/packet of 17 bytes/);
  });

  it("does not report a truncated PUBACK", () => {
    const got: number[] = [];
    new PubackScanner((id) => got.push(id)).scan(gen({ cmd: "puback", messageId: 7 }).subarray(0, 3));
    expect(got).toEqual([]);
  });
});

describe("parseHttpsUrl (src/url.ts)", () => {
  it("splits https URLs into host, port and path", () => {
    expect(parseHttpsUrl("https://Updates.Example.com/p/release.json")).toEqual({ host: "updates.example.com", port: 443, path: "/p/release.json" });
    expect(parseHttpsUrl("https://127.0.0.1:8443/a?b=c#frag")).toEqual({ host: "127.0.0.1", port: 8443, path: "/a?b=c" });
    expect(parseHttpsUrl("HTTPS://h")).toEqual({ host: "h", port: 443, path: "/" });
    expect(parseHttpsUrl("https://h?x=1")).toEqual({ host: "h", port: 443, path: "/?x=1" });
    expect(parseHttpsUrl("https://[::1]:9000/x")).toEqual({ host: "::1", port: 9000, path: "/x" });
  });

  it("refuses http: and other schemes with HTTP_INSECURE_URL", () => {
    for (const url of ["http://h/x", "ftp://h/x", "mqtt://h"]) {
      let err: unknown;
      try { parseHttpsUrl(url); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(OtaError);
      expect((err as OtaError).code).toBe("HTTP_INSECURE_URL");
    }
  });

  it("rejects malformed URLs with TypeError", () => {
    for (const url of ["updates.example.com/x", "https://", "https://h:0/", "https://h:70000/", "https://u:p@h/", "https://h:x/", "https:///x"])
      expect(() => parseHttpsUrl(url), url).toThrow(TypeError);
  });
});

describe("signature checks around Moddable's crypt (src/signature-checks.ts)", () => {
  it("builds the PKCS#1 v1.5 SHA-256 block a real RSA-2048 signature opens to, and no other", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = publicKey.export({ format: "jwk" });
    const n = b64uInt(jwk.n!), e = b64uInt(jwk.e!);
    const data = Buffer.from("firmware manifest");
    const s = BigInt("0x" + sign("sha256", data, privateKey).toString("hex"));
    const m = modPow(s, e, n);
    const em = bigintToBytes(m, 256)!;
    expect(em[0]).toBe(0); // the block's leading zero is kept at full width
    const digest = new Uint8Array(createHash("sha256").update(data).digest());
    expect(Buffer.from(em).equals(Buffer.from(pkcs1Sha256Block(256, digest)))).toBe(true);
    const other = digest.slice();
    other[31]! ^= 1;
    expect(Buffer.from(em).equals(Buffer.from(pkcs1Sha256Block(256, other)))).toBe(false);
    expect(() => pkcs1Sha256Block(61, digest)).toThrow(RangeError);
    expect(bigintToBytes(1n << 2048n, 256)).toBeUndefined();
    expect(bigintToBytes(-1n, 256)).toBeUndefined();
    expect(bigintToBytes(0x0102n, 3)).toEqual(Uint8Array.of(0, 1, 2));
  });

  it("accepts P-256 scalars only in 1..n-1", () => {
    const raw = (r: bigint, s: bigint) => Uint8Array.from(Buffer.from(r.toString(16).padStart(64, "0") + s.toString(16).padStart(64, "0"), "hex"));
    expect(p256ScalarsInRange(raw(1n, P256_N - 1n))).toBe(true);
    expect(p256ScalarsInRange(raw(0n, 0n))).toBe(false);
    expect(p256ScalarsInRange(raw(P256_N, 5n))).toBe(false);
    expect(p256ScalarsInRange(raw(5n, P256_N))).toBe(false);
    expect(p256ScalarsInRange(new Uint8Array(63))).toBe(false);
  });
});

describe("drainFragment (src/http-drain.ts)", () => {
  const source = (bytes: Uint8Array) => {
    let pos = 0;
    return { take: (n: number) => { const b = bytes.slice(pos, pos + n); pos += n; return b.buffer as ArrayBuffer; }, get pos() { return pos; } };
  };
  const body = Uint8Array.from({ length: 10_000 }, (_, i) => i * 7);

  it("offers a fragment until a 4 KB reader has all of it, bytes in order", () => {
    const src = source(body);
    const got: number[] = [];
    const buf = new Uint8Array(4096);
    const left = drainFragment(body.length, src.take, { onData: (_, read) => { const n = read(buf); got.push(...buf.subarray(0, n)); } }, () => false);
    expect(left).toBe(0);
    expect(Uint8Array.from(got)).toEqual(body);
  });

  it("stops when the handler reads nothing, or closes the request", () => {
    const src = source(body);
    expect(drainFragment(body.length, src.take, { onData: () => {} }, () => false)).toBe(body.length);
    let closed = false;
    const left = drainFragment(body.length, source(body).take, { onData: (_, read) => { read(new Uint8Array(1000)); closed = true; } }, () => closed);
    expect(left).toBe(body.length - 1000);
  });
});

describe("basicConstraintsCa (src/signature-checks.ts)", () => {
  it("is true only for cA TRUE, as OpenSSL encodes the extensions of a CA and of a leaf", async () => {
    const { makeCa, makeServerCert } = await import("../../backend/release/pki"); // first: it installs the Reflect shim @peculiar/x509 needs
    const { X509Certificate } = await import("@peculiar/x509");
    const ca = await makeCa();
    const leaf = await makeServerCert(ca);
    const value = (pem: string) => new Uint8Array(new X509Certificate(pem).getExtension("2.5.29.19")!.value);
    expect(basicConstraintsCa(value(ca.caCertPem))).toBe(true);
    expect(basicConstraintsCa(value(leaf.certPem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"))).toBe(false);
    // cA omitted is FALSE (DER leaves a DEFAULT out); absent, malformed, cA with another value: false
    expect(basicConstraintsCa(Uint8Array.of(0x30, 0x00))).toBe(false);
    expect(basicConstraintsCa(undefined)).toBe(false);
    expect(basicConstraintsCa(Uint8Array.of(0x04, 0x03, 0x01, 0x01, 0xff))).toBe(false);
    expect(basicConstraintsCa(Uint8Array.of(0x30, 0x03, 0x01, 0x01, 0x00))).toBe(false);
    expect(basicConstraintsCa(Uint8Array.of(0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00))).toBe(true);
  });
});

describe("sanMatches (src/signature-checks.ts): the host-name check of a leaf sent alone", () => {
  const ip = (...b: number[]) => Uint8Array.from(b).buffer;
  it("matches a dNSName (any case), one leading wildcard label, an IPv4 iPAddress; nothing else", () => {
    expect(sanMatches([{ tag: 2, value: "Updates.Example" }], "updates.example")).toBe(true);
    expect(sanMatches([{ tag: 2, value: "*.example.com" }], "a.example.com")).toBe(true);
    expect(sanMatches([{ tag: 2, value: "*.example.com" }], "example.com")).toBe(false);
    expect(sanMatches([{ tag: 2, value: "*.example.com" }], "a.b.example.com")).toBe(false);
    expect(sanMatches([{ tag: 2, value: "a*.example.com" }], "ab.example.com")).toBe(false);
    expect(sanMatches([{ tag: 7, value: ip(127, 0, 0, 1) }], "127.0.0.1")).toBe(true);
    expect(sanMatches([{ tag: 7, value: ip(127, 0, 0, 2) }], "127.0.0.1")).toBe(false);
    expect(sanMatches([{ tag: 2, value: "127.0.0.1" }, { tag: 1, value: "a@b" }], "127.0.0.1")).toBe(true);
    expect(sanMatches([{ tag: 2, value: "other.example" }], "updates.example")).toBe(false);
    expect(sanMatches(undefined, "updates.example")).toBe(false);
    expect(sanMatches([{ tag: 2, value: "updates.example" }], undefined)).toBe(false);
  });
});
