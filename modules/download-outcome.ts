/*
 * How a download attempt's end is judged: from what was written and hashed, not from how the
 * connection ended.
 *
 * Invariant (checked by Downloader.run before it hashes, tested in test/agent/download-wire):
 *   - the slot and the streamed hash hold exactly the bytes the attempt took, never one past
 *     the manifest's size;
 *   - an attempt whose slot reached the manifest's size is complete, however the connection
 *     then ended (clean end, a reset or a parse error after the last byte, extra bytes in the
 *     same read), unless the body itself was refused (a chunked or close-delimited body longer
 *     than the manifest's size);
 *   - a complete attempt leaves the slot "written"; nothing reaches verification in "writing".
 */
import type { ErrorCode } from "./errors";
import { constant } from "./constant";

/** Codes that condemn the body itself: a slot full of its bytes is not an image. */
const BODY_REFUSED: readonly ErrorCode[] = constant(["HTTP_TOO_LONG"]);

/** The attempt's verdict, as the download loop sees it. */
export type AttemptEnd = { ok: true } | { ok: false; code: ErrorCode };

/** True when the attempt delivered the whole image: every byte of `size` is in the slot and hashed. */
export function attemptComplete(end: AttemptEnd, written: number, size: number): boolean {
  if (written > size) throw new RangeError(`slot holds ${written} bytes of a ${size}-byte image`);
  if (end.ok) return written === size;
  return written === size && BODY_REFUSED.indexOf(end.code) < 0;
}

/**
 * How many body bytes the next read may take: up to the block buffer's free space, never past
 * the manifest's size (bytes after it never reach the slot or the hash).
 */
export function readRoom(offset: number, fill: number, block: number, size: number): number {
  return Math.max(0, Math.min(block - fill, size - offset - fill));
}
