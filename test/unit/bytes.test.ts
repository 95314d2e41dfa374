import { describe, expect, it } from "vitest";
import { fromBase64, fromHex, toBase64, toHex, utf8Decode, utf8Encode } from "../../modules/bytes";

describe("bytes", () => {
  it("matches Node's UTF-8, hex and base64 on random input", () => {
    for (let n = 0; n < 200; n++) {
      const b = new Uint8Array(n).map(() => Math.floor(Math.random() * 256));
      expect(toHex(b)).toBe(Buffer.from(b).toString("hex"));
      expect(toBase64(b)).toBe(Buffer.from(b).toString("base64"));
      expect([...fromBase64(toBase64(b))]).toEqual([...b]);
      expect([...fromHex(toHex(b))]).toEqual([...b]);
    }
    const text = "version 2.1.3 \u00e9\u4e2d\ud83d\ude00";
    expect([...utf8Encode(text)]).toEqual([...Buffer.from(text, "utf8")]);
    expect(utf8Decode(utf8Encode(text))).toBe(text);
  });

  it("refuses malformed input instead of guessing", () => {
    expect(() => utf8Decode(Uint8Array.of(0xc3))).toThrow(TypeError);
    expect(() => utf8Decode(Uint8Array.of(0xc0, 0x80))).toThrow(TypeError);
    expect(() => utf8Decode(Uint8Array.of(0xff))).toThrow(TypeError);
    expect(() => fromHex("abc")).toThrow(TypeError);
    expect(() => fromHex("zz")).toThrow(TypeError);
    expect(() => fromBase64("abc")).toThrow(TypeError);
    expect(() => fromBase64("ab!=")).toThrow(TypeError);
  });
});
