/*
 * AES-256-GCM decryption (16-byte IV, no AAD) over the primitives Moddable's crypt has: one AES
 * block, CTR over whole blocks, GHASH (README "Pre-encrypted images", device side). What the
 * primitives get wrong for GCM is handled here, XS-safe:
 *  - CTR carries through all 128 bits of the counter (modCrypt.c), GCM's inc32 only through the
 *    low 32: the counter block is set again (gcmCounterBlock) at the start of every call and where
 *    the low word wraps inside one;
 *  - GHASH pads a partial block with zeros at once (kcl/ghash.c): it is fed whole blocks only, up
 *    to 15 ciphertext bytes kept here;
 *  - a partial block's plain bytes go out at once (the stream's sink needs every byte before the
 *    tag is checked): its keystream block is made with one AES block and kept for the next call.
 * The binding (src/crypto.ts on the device) passes these three; test/release/enc-gcm.test.ts holds
 * this against OpenSSL's GCM and the wrap against a block-by-block reference.
 */
import type { GcmDecrypt } from "./ports";
import { gcmBlocksBeforeWrap, gcmCounterBlock } from "./enc-image";

export interface GcmPrimitives {
  /** AES-256 of one 16-byte block with the GCM key (E_K). */
  encryptBlock(block: Uint8Array): Uint8Array;
  /** CTR from `counter` over `input` (whole blocks) into `output`; may carry through all 128 bits. */
  ctr(counter: Uint8Array, input: Uint8Array, output: Uint8Array): void;
  /** GHASH with subkey `h`: write whole blocks, close() = the hash after the length block (len(A) = 0, len(C) in bits). */
  ghash(h: Uint8Array): { write(blocks: Uint8Array): void; close(): Uint8Array };
}

export class GcmOverCtr implements GcmDecrypt {
  private readonly gh: { write(blocks: Uint8Array): void; close(): Uint8Array };
  private readonly ek0: Uint8Array;
  /** Ciphertext (= keystream) bytes consumed. */
  private pos = 0;
  /** The ciphertext bytes of the current partial block (GHASH takes whole blocks). */
  private readonly part = new Uint8Array(16);
  /** Its keystream block (valid while pos % 16 != 0). */
  private ks: Uint8Array = new Uint8Array(16);

  /** `j0` for tests; otherwise derived from the 16-byte IV as GCM does (GHASH of IV || 0^64 || [128]_64). */
  constructor(private readonly p: GcmPrimitives, iv: Uint8Array, private readonly j0: Uint8Array = GcmOverCtr.j0(p, iv)) {
    this.gh = p.ghash(p.encryptBlock(new Uint8Array(16)));
    this.ek0 = p.encryptBlock(j0);
  }

  static j0(p: GcmPrimitives, iv: Uint8Array): Uint8Array {
    if (iv.length !== 16) throw new RangeError("esp_encrypted_img's GCM IV is 16 bytes");
    const g = p.ghash(p.encryptBlock(new Uint8Array(16)));
    g.write(iv);
    return g.close();
  }

  update(ciphertext: Uint8Array): Uint8Array {
    const out = new Uint8Array(ciphertext.length);
    this.run(ciphertext, out, true);
    return out;
  }

  replay(plaintext: Uint8Array): void {
    // C = P xor keystream: the same walk, the ciphertext made from the plain bytes is what GHASH takes
    const c = new Uint8Array(plaintext.length);
    this.run(plaintext, c, false);
  }

  /** `input` -> `output` by the keystream; GHASH takes the ciphertext (input when decrypting, output when replaying). */
  private run(input: Uint8Array, output: Uint8Array, decrypting: boolean): void {
    const cipher = decrypting ? input : output;
    let at = 0;
    const n = input.length;
    // finish a partial block with its kept keystream
    while (at < n && this.pos % 16 !== 0) {
      const k = this.pos % 16;
      output[at] = input[at]! ^ this.ks[k]!;
      this.part[k] = cipher[at]!;
      at++;
      this.pos++;
      if (this.pos % 16 === 0) this.gh.write(this.part);
    }
    // whole blocks, in runs that do not cross a wrap of the counter's low word
    while (n - at >= 16) {
      const block = this.pos / 16;
      const count = Math.min((n - at) >> 4, gcmBlocksBeforeWrap(this.j0, block));
      const len = count * 16;
      this.p.ctr(gcmCounterBlock(this.j0, block), input.subarray(at, at + len), output.subarray(at, at + len));
      this.gh.write(cipher.subarray(at, at + len));
      at += len;
      this.pos += len;
    }
    // a partial block: its keystream now, kept for the next call
    if (at < n) {
      this.ks = this.p.encryptBlock(gcmCounterBlock(this.j0, this.pos / 16));
      for (let k = 0; at < n; k++, at++, this.pos++) {
        output[at] = input[at]! ^ this.ks[k]!;
        this.part[k] = cipher[at]!;
      }
    }
  }

  finish(tag: Uint8Array): boolean {
    const k = this.pos % 16;
    if (k !== 0) this.gh.write(this.part.subarray(0, k)); // the last partial block, zero-padded by GHASH
    const s = this.gh.close();
    let diff = tag.length === 16 ? 0 : 1;
    for (let i = 0; i < 16; i++) diff |= (s[i]! ^ this.ek0[i]!) ^ (tag[i] ?? 0);
    return diff === 0;
  }
}
