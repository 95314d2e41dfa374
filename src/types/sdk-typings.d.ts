/*
 * Modules the Moddable SDK 8.x declares in its own typings/ (crypt.d.ts, embedded/update.d.ts,
 * embedded/storage/flash.d.ts, mc/ffi.d.ts) but @moddable/typings 5.6.0 on npm lacks.
 * Only for `tsc -p tsconfig.device.json` and the manifest check's stand-in for the SDK typings;
 * NOT listed in manifest.json (mcconfig maps the SDK's own files, and two declarations would clash).
 */

// modules/crypt/digest/crypt.js: close() returns the digest and does NOT reset. Declared as narrowly
// as the SDK 8.2.3 typings/crypt.d.ts, so code that compiles here compiles there.
declare module "crypt" {
  export class Digest {
    constructor(type: "MD5" | "SHA1" | "SHA224" | "SHA256" | "SHA384" | "SHA512");
    /** As the SDK's typings/crypt.d.ts says (the native also takes views: modCrypt.c xsmcGetBufferReadable). */
    write(message: string | ArrayBuffer): void;
    close(): ArrayBuffer;
    reset(): void;
    readonly blockSize: number;
    readonly outputSize: number;
  }
}

// modules/io/flash/esp32/flash-esp32.{js,c}: paths "running", "nextota", "xs", or a data partition label
declare module "embedded:storage/flash" {
  export interface FlashOpenOptions {
    path: string;
    mode?: "r" | "r+";
  }
  export interface FlashStatus {
    size: number;
    blockLength: number;
    blocks: number;
  }
  export class Flash {
    close(): void;
    eraseBlock(start: number, end?: number): void;
    read(byteLength: number, byteOffset: number): ArrayBuffer;
    /** Reads into a caller-owned buffer; returns its byteLength. */
    read(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): number;
    write(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): void;
    status(): FlashStatus;
    format: "buffer";
  }
  const FlashStorage: { open(options: FlashOpenOptions): Flash };
  export default FlashStorage;
}

// modules/io/update/esp32/update-esp32.{js,c}: esp_ota_begin/write/end + esp_ota_set_boot_partition
declare module "embedded:update" {
  import type { Flash } from "embedded:storage/flash";
  export interface Updater {
    close(): void;
    complete(): void;
    write(bytes: ArrayBuffer | ArrayBufferView, byteOffset?: number): void;
    format: "buffer";
  }
  const Update: { open(options: { partition: Flash; mode?: "a" | "w"; byteLength?: number }): Updater };
  export default Update;
}

// typings/mc/ffi.d.ts fallback: mcconfig generates exact signatures from the manifest's ffi.functions
declare module "mc/ffi" {
  interface FFI {
    [name: string]: (...args: any[]) => any;
  }
  const FFI: { new (): FFI };
  export default FFI;
}
