/*
 * Decrypting an esp_encrypted_img file while it streams, the device side (issue 31): one pass,
 * the 512-byte header kept, plain bytes handed on as they come, the GCM tag checked at the end.
 * The checks in the component's order: magic (at byte 4), the size against the slot and the
 * key (at byte 512, before any plain byte), no byte past the announced size, then at the end
 * the size and the tag. Resume after a reboot needs no GHASH state: `resume` replays the plain
 * bytes already in the slot (the binding turns them back into ciphertext and GHASHes that).
 * The cipher is injected (a port in the Moddable sense): Moddable's CTR + GHASH, Node's GCM.
 */
import { OtaError } from "./errors";
import type { GcmDecrypt } from "./ports";
import { checkEncMagic, parseEncHeader, ENC_HEADER_SIZE, type EncHeader } from "./enc-image";

export type { GcmDecrypt };

export interface EncStreamOptions {
  /** The GCM key in the header, opened with the device's key. Throws ENC_KEY (or KEY_*). */
  openKey(header: EncHeader): Uint8Array;
  gcm(key: Uint8Array, iv: Uint8Array): GcmDecrypt;
  /** The slot size: a header announcing more is ENC_OVERSIZED before any key work. */
  maxSize: number;
  /** Plain bytes, in order. */
  sink(plain: Uint8Array): void;
  /**
   * The plain size the signed manifest announces: a header announcing more is ENC_TRUNCATED (the
   * file ends before it), less is ENC_OVERSIZED (bytes after it), both before the key is opened.
   */
  expectSize?: number;
}

export class EncStream {
  private readonly head = new Uint8Array(ENC_HEADER_SIZE);
  private headLen = 0;
  private gcm?: GcmDecrypt;
  /** Parsed header, once 512 bytes are in (journal it: resume needs it). */
  header?: EncHeader;
  /** Ciphertext (= plain) bytes taken so far. */
  done = 0;

  constructor(private readonly o: EncStreamOptions) {}

  /** A stream that goes on after `written` plain bytes, replayed through `readPlain` (from the slot). */
  static resume(o: EncStreamOptions, headerBytes: Uint8Array, written: number, readPlain: (offset: number, length: number) => Uint8Array, chunk = 4096): EncStream {
    const s = new EncStream(o);
    s.write(headerBytes.subarray(0, ENC_HEADER_SIZE));
    if (!s.header || written > s.header.binSize) throw new OtaError("ENC_TRUNCATED", "journaled header or resume point is not usable");
    for (let at = 0; at < written; at += chunk) s.gcm!.replay(readPlain(at, Math.min(chunk, written - at)));
    s.done = written;
    return s;
  }

  /** Take the next bytes of the file. Throws ENC_MAGIC, ENC_OVERSIZED, ENC_KEY. */
  write(data: Uint8Array): void {
    let at = 0;
    if (this.headLen < ENC_HEADER_SIZE) {
      const n = Math.min(ENC_HEADER_SIZE - this.headLen, data.length);
      this.head.set(data.subarray(0, n), this.headLen);
      this.headLen += n;
      at = n;
      if (this.headLen - n < 4) checkEncMagic(this.head.subarray(0, this.headLen)); // at byte 4, as the component
      if (this.headLen < ENC_HEADER_SIZE) return;
      const h = parseEncHeader(this.head);
      if (h.binSize > this.o.maxSize) throw new OtaError("ENC_OVERSIZED", `the header announces ${h.binSize} bytes, the slot holds ${this.o.maxSize}`);
      const want = this.o.expectSize;
      if (want !== undefined && h.binSize > want) throw new OtaError("ENC_TRUNCATED", `the header announces ${h.binSize} bytes, the file holds ${want} after it`);
      if (want !== undefined && h.binSize < want) throw new OtaError("ENC_OVERSIZED", `the file holds ${want} bytes after the header, which announces ${h.binSize}`);
      this.gcm = this.o.gcm(this.o.openKey(h), h.iv);
      this.header = h;
    }
    if (at >= data.length) return;
    const body = data.subarray(at);
    if (this.done + body.length > this.header!.binSize) throw new OtaError("ENC_OVERSIZED", `byte ${ENC_HEADER_SIZE + this.header!.binSize} and after: more than the header announces`);
    this.done += body.length;
    const plain = this.gcm!.update(body);
    if (plain.length) this.o.sink(plain);
  }

  /** After the last byte. Throws ENC_TRUNCATED, ENC_TAG. */
  finish(): void {
    if (!this.header) throw new OtaError("ENC_TRUNCATED", `${this.headLen} bytes: the header alone is ${ENC_HEADER_SIZE}`);
    if (this.done < this.header.binSize) throw new OtaError("ENC_TRUNCATED", `${this.done} of ${this.header.binSize} bytes`);
    if (!this.gcm!.finish(this.header.tag)) throw new OtaError("ENC_TAG", "the image was altered, or encrypted for another key");
  }
}
