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
