/*
 * A minimal valid ESP32 app image for the release tests (SIM's image builder is the full one):
 * esp_image_header_t, one DROM segment that starts with esp_app_desc_t, the XOR checksum in
 * its padding, and the appended SHA-256.
 */
import { createHash } from "node:crypto";

export function minimalAppImage(o: { version: string; project: string; secureVersion: number; chipId?: number; bodyBytes?: number }): Uint8Array {
  const segLen = (256 + (o.bodyBytes ?? 1024) + 3) & ~3;
  const seg = new Uint8Array(segLen).map((_, i) => (i * 7 + 3) & 255);
  const dv = new DataView(seg.buffer);
  seg.fill(0, 0, 256);
  dv.setUint32(0, 0xabcd5432, true);
  dv.setUint32(4, o.secureVersion, true);
  seg.set(new TextEncoder().encode(o.version), 16);
  seg.set(new TextEncoder().encode(o.project), 48);
  const head = new Uint8Array(24 + 8);
  const hv = new DataView(head.buffer);
  head[0] = 0xe9;
  head[1] = 1; // one segment
  head[2] = 2; // DIO
  head[3] = 0x20;
  hv.setUint32(4, 0x400d0018, true); // entry
  hv.setUint16(12, o.chipId ?? 0, true);
  head[23] = 1; // hash appended
  hv.setUint32(24, 0x3f400020, true); // DROM: matches data offset 0x20 modulo 64 KB
  hv.setUint32(28, segLen, true);
  const body = head.length + segLen;
  const padded = (body + 1 + 15) & ~15;
  const out = new Uint8Array(padded + 32);
  out.set(head);
  out.set(seg, head.length);
  let x = 0xef;
  for (const b of seg) x ^= b;
  out[padded - 1] = x;
  out.set(createHash("sha256").update(out.subarray(0, padded)).digest(), padded);
  return out;
}
