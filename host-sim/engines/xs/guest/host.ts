/*
 * XS side: the one door to Node. Captures the worker's host functions (issueCommand, print,
 * TextEncoder/TextDecoder, gc) and then removes them, with setImmediate and performance, from
 * the global object, so that modules/ running in this bundle can only reach the outside
 * through the ports (a module that used TextEncoder or setImmediate fails here as on a chip
 * without them). This file must be the bundle's first import.
 */
import { HEADER, STATUS_OK, type WireError } from "../protocol";
import { OtaError, isErrorCode } from "../../../../modules/errors";

interface WorkerGlobals {
  issueCommand(message: ArrayBuffer): ArrayBuffer;
  print(...args: unknown[]): void;
  gc?(): void;
  TextEncoder: { new (): { encode(s: string): Uint8Array } };
  TextDecoder: { new (): { decode(b: Uint8Array): string } };
}

const g = globalThis as unknown as WorkerGlobals & Record<string, unknown>;
const issue = g.issueCommand;
export const print = g.print;
export const collectGarbage = g.gc ?? (() => {});
const encoder = new g.TextEncoder();
const decoder = new g.TextDecoder();
for (const name of ["issueCommand", "print", "gc", "TextEncoder", "TextDecoder", "setImmediate", "performance", "currentMeterLimit", "resetMeter"]) {
  delete g[name];
}

export const utf8 = (s: string): Uint8Array => encoder.encode(s);
export const fromUtf8 = (b: Uint8Array): string => decoder.decode(b);

// One resizable request buffer: no per-call allocation on the request side.
const MAX = 256 * 1024;
const scratch = new (ArrayBuffer as unknown as { new (n: number, o: { maxByteLength: number }): ArrayBuffer & { resize(n: number): void } })(HEADER, { maxByteLength: MAX });
const view = new DataView(scratch);
const bytes = new Uint8Array(scratch);

function frame(size: number): ArrayBuffer & { resize(n: number): void } {
  if (size <= MAX) {
    scratch.resize(size);
    return scratch;
  }
  const big = new ArrayBuffer(size) as ArrayBuffer & { resize(n: number): void };
  return big;
}

function rethrow(reply: Uint8Array): never {
  const e = JSON.parse(fromUtf8(reply.subarray(1))) as WireError;
  if (e.code && isErrorCode(e.code)) {
    const err = new OtaError(e.code, e.detail);
    if (e.name !== "OtaError") err.name = e.name;
    throw err;
  }
  if (e.name === "TypeError") throw new TypeError(e.message);
  if (e.name === "RangeError") throw new RangeError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  throw err;
}

/** Call Node: header fields a, b, c and an optional tail (one or two parts). Returns the reply's tail. */
export function call(op: number, a = 0, b = 0, c = 0, tail?: Uint8Array, tail2?: Uint8Array): Uint8Array {
  const n1 = tail ? tail.byteLength : 0;
  const n2 = tail2 ? tail2.byteLength : 0;
  const size = HEADER + n1 + n2;
  const buf = frame(size);
  const v = buf === scratch ? view : new DataView(buf);
  const u = buf === scratch ? bytes : new Uint8Array(buf);
  v.setUint32(0, op, true);
  v.setUint32(4, a >>> 0, true);
  v.setUint32(8, b >>> 0, true);
  v.setUint32(12, c >>> 0, true);
  if (tail) u.set(tail, HEADER);
  if (tail2) u.set(tail2, HEADER + n1);
  const reply = new Uint8Array(issue(buf));
  if (reply[0] !== STATUS_OK) rethrow(reply);
  return reply.subarray(1);
}

export function callJson(op: number, value: unknown, a = 0, b = 0): Uint8Array {
  return call(op, a, b, 0, utf8(JSON.stringify(value)));
}

export function u32(reply: Uint8Array, index = 0): number {
  return new DataView(reply.buffer, reply.byteOffset, reply.byteLength).getUint32(index * 4, true);
}

export function f64(reply: Uint8Array): number {
  return new DataView(reply.buffer, reply.byteOffset, reply.byteLength).getFloat64(0, true);
}

export function json<T>(reply: Uint8Array): T {
  return JSON.parse(fromUtf8(reply)) as T;
}
