/*
 * Hands one HTTP body fragment (Moddable http message 4, `count` bytes) to a port handler.
 * http.js skips whatever a chunked-body callback leaves unread, so the fragment is offered
 * again until the handler has read all of it or reads nothing. Each read copies one
 * ArrayBuffer from `take` (http.js has no read-into-buffer) into the caller's buffer.
 * Pure: tested under Node in test/device.
 */
import type { HttpHandler } from "../modules/ports";

/** Returns the bytes left unread (0 unless the handler stopped reading or closed the request). */
export function drainFragment(count: number, take: (n: number) => ArrayBuffer, handler: Pick<HttpHandler, "onData">, isClosed: () => boolean): number {
  let remaining = count;
  const read = (target: Uint8Array): number => {
    const n = Math.min(target.byteLength, remaining);
    if (n <= 0 || isClosed()) return 0;
    const chunk = new Uint8Array(take(n));
    const got = Math.min(chunk.length, n);
    target.set(chunk.subarray(0, got));
    remaining -= got;
    return got;
  };
  while (remaining > 0 && !isClosed()) {
    const before = remaining;
    handler.onData(remaining, read);
    if (remaining === before) break;
  }
  return remaining;
}
