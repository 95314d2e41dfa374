/*
 * Bridge micro-benchmark firmware (XS-safe; bundled into the worker by bench/xs-bridge.ts):
 * at boot, runs `n` iterations of one kind of work synchronously and logs "@bb <n>".
 *   call   ports.system.freeHeap()        (a bridge round trip carrying no data)
 *   read   4 KB flash read into a buffer  (a round trip carrying 4 KB back into XS)
 *   write  4 KB flash write               (a round trip carrying 4 KB out of XS)
 *   sha    4 KB SHA-256 update            (a round trip carrying 4 KB out of XS)
 *   xor    XOR of 4 KB in XS by modules/image.ts's xorBytes (no bridge: XS compute only)
 *   copy   4 KB Uint8Array.set in XS      (no bridge: an XS memory copy)
 */
import type { Ports } from "../modules/ports";
import { xorBytes } from "../modules/image";

export function bootFirmware(ports: Ports, boot: { config: unknown; behavior: string }): { close(): void } {
  const { mode, n } = boot.config as { mode: string; n: number };
  const buf = new Uint8Array(4096);
  const other = new Uint8Array(4096);
  const part = ports.flash.open("nextota");
  let x = 0;
  if (mode === "call") for (let i = 0; i < n; i++) x += ports.system.freeHeap() & 1;
  else if (mode === "read") for (let i = 0; i < n; i++) part.read((i % 256) * 4096, buf);
  else if (mode === "write") {
    for (let i = 0; i < n; i++) part.write((i % 256) * 4096, buf);
  } else if (mode === "sha") {
    const h = ports.crypto.sha256();
    for (let i = 0; i < n; i++) h.write(buf);
    h.close();
  } else if (mode === "xor") {
    for (let i = 0; i < n; i++) x = xorBytes(buf, 4096, x);
  } else if (mode === "copy") for (let i = 0; i < n; i++) other.set(buf);
  ports.system.log(`@bb ${n} ${x}`);
  return { close() {} };
}
