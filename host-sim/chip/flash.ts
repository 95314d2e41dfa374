/*
 * SimFlash: raw NOR flash, as strict as MCUboot's simflash.
 *
 * - Erase by 4 KB sector to 0xFF; a write can only clear bits (the result is old AND new);
 *   access outside the chip throws FLASH_OUT_OF_BOUNDS.
 * - Sparse: a Map of sector index -> 4 KB; an erased sector is absent, so a 4 MB chip holding
 *   two 1.5 MB images costs ~3 MB and a blank one almost nothing (1,000 devices fit in memory).
 * - Every write and erase is one counted operation (`ops`), with wear figures per sector.
 * - cutPowerAt(n) tears the n-th operation from now: a write keeps a prefix of its bytes (the
 *   byte at the tear point partly programmed), an erase leaves a prefix of the sector erased.
 *   The tear point comes from a seeded PRNG, so a run is reproducible. That operation and every
 *   later one (reads too) throw PowerCut until powerOn().
 * - save/load: a raw image whose offsets are the chip's (what esptool read_flash would give).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../../modules/errors";

export const SECTOR_SIZE = 4096;
export const DEFAULT_FLASH_SIZE = 4 * 1024 * 1024;

export class PowerCut extends OtaError {
  constructor(detail: string) {
    super("FLASH_POWER_CUT", detail);
    this.name = "PowerCut";
  }
}

export interface SimFlashOptions {
  /** Bytes, a multiple of 4096 (default 4 MB). */
  size?: number;
  /** Seed of the tearing PRNG (default 1). */
  seed?: number;
  /** Throw FLASH_NOT_ERASED when a write would need to set a bit (default false: AND, like the chip). */
  strict?: boolean;
}

export interface FlashStats {
  /** writes + erases */
  ops: number;
  writes: number;
  erases: number;
  bytesWritten: number;
  reads: number;
  bytesRead: number;
  /** Writes that asked for a 1 where the flash held a 0 (the chip ANDs; a bug in the writer). */
  overwrites: number;
  /** Highest erase count of any sector. */
  maxSectorErases: number;
}

/**
 * Sector buffers. An update programs 384 sectors and erases as many: one ArrayBuffer per sector
 * costs more than the copy into it (allocation, and the garbage collections that 1.5 MB of
 * external memory per update sets off). So sectors are 4 KB views into shared 256 KB slabs, and
 * an erased sector's buffer is kept for the next program, unless a clone still shares it.
 */
const SLAB_SECTORS = 64;
const MAX_SPARE = 1024;
let slab: ArrayBuffer | undefined;
let slabUsed = SLAB_SECTORS;
const spare: Uint8Array[] = [];

/** A sector buffer; its content is undefined: the caller fills all of it. */
function takeSector(): Uint8Array {
  const s = spare.pop();
  if (s) return s;
  if (slabUsed === SLAB_SECTORS) {
    slab = new ArrayBuffer(SLAB_SECTORS * SECTOR_SIZE);
    slabUsed = 0;
  }
  return new Uint8Array(slab!, SECTOR_SIZE * slabUsed++, SECTOR_SIZE);
}

function copySector(from: Uint8Array): Uint8Array {
  const s = takeSector();
  s.set(from);
  return s;
}

function giveSector(s: Uint8Array): void {
  if (spare.length < MAX_SPARE) spare.push(s);
}

/** xorshift32: small, deterministic, seedable. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
  s = (s ^ (s >>> 16)) >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

export class SimFlash {
  readonly size: number;
  readonly sectorSize = SECTOR_SIZE;
  readonly strict: boolean;
  /** Erase count per sector (wear). */
  readonly sectorErases: Uint32Array;
  private sectors = new Map<number, Uint8Array>();
  /** Sectors whose buffer another clone also holds: copied before the first write (copy-on-write). */
  private shared = new Set<number>();
  private cutIn = 0; // ops until the torn one; 0 = none scheduled
  private keepOverride: number | undefined;
  private random: () => number;
  private _powered = true;
  private disposed = false;
  /** Number of power-ons after a cut (lets bound objects notice a reboot). */
  powerCycles = 0;
  private s = { writes: 0, erases: 0, bytesWritten: 0, reads: 0, bytesRead: 0, overwrites: 0 };

  constructor(options: SimFlashOptions = {}) {
    const size = options.size ?? DEFAULT_FLASH_SIZE;
    if (!Number.isInteger(size) || size <= 0 || size % SECTOR_SIZE) throw new RangeError(`flash size must be a positive multiple of ${SECTOR_SIZE}`);
    this.size = size;
    this.strict = options.strict ?? false;
    this.random = prng(options.seed ?? 1);
    this.sectorErases = new Uint32Array(size / SECTOR_SIZE);
  }

  get powered(): boolean {
    return this._powered;
  }
  /** Writes + erases since creation (or resetStats). */
  get ops(): number {
    return this.s.writes + this.s.erases;
  }
  get sectorCount(): number {
    return this.size / SECTOR_SIZE;
  }
  /** Sectors holding data (not erased): the memory this flash costs is this x 4 KB. */
  get usedSectors(): number {
    return this.sectors.size;
  }

  stats(): FlashStats {
    let max = 0;
    for (let i = 0; i < this.sectorErases.length; i++) if (this.sectorErases[i]! > max) max = this.sectorErases[i]!;
    return { ops: this.ops, ...this.s, maxSectorErases: max };
  }

  resetStats(): void {
    this.s = { writes: 0, erases: 0, bytesWritten: 0, reads: 0, bytesRead: 0, overwrites: 0 };
    this.sectorErases.fill(0);
  }

  /**
   * Tear the n-th write or erase from now (n >= 1); it and everything after throw PowerCut.
   * `keep` fixes the tear point (bytes of the write that land / bytes of the sector erased)
   * instead of drawing it from the PRNG.
   */
  cutPowerAt(n: number, keep?: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError("cutPowerAt needs an integer >= 1");
    this.cutIn = n;
    this.keepOverride = keep;
  }

  cancelPowerCut(): void {
    this.cutIn = 0;
    this.keepOverride = undefined;
  }

  /** Cut power now, between operations (nothing torn). */
  powerOff(): void {
    this._powered = false;
    this.cutIn = 0;
  }

  powerOn(): void {
    this.live("powerOn()");
    if (!this._powered) this.powerCycles++;
    this._powered = true;
    this.cutIn = 0;
    this.keepOverride = undefined;
  }

  private checkPower(what: string): void {
    if (!this._powered) {
      this.live(what);
      throw new PowerCut(`${what} after power loss`);
    }
  }

  private live(what: string): void {
    if (this.disposed) throw new Error(`SimFlash: ${what} after dispose()`);
  }

  /**
   * Done with this chip: the sector buffers only it holds go back to the pool the next chip
   * programs from (those a clone shares stay with the clone). A bench that makes a fresh chip
   * per run would otherwise allocate the image's backing store inside each measured update, a
   * cost real flash does not have. Every later operation throws.
   */
  dispose(): void {
    for (const [i, sec] of this.sectors) if (!this.shared.has(i)) giveSector(sec);
    this.sectors.clear();
    this.shared.clear();
    this.disposed = true;
    this._powered = false;
  }

  private bounds(offset: number, length: number, what: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `${what} 0x${offset.toString(16)}+${length} outside 0..0x${this.size.toString(16)}`);
    }
  }

  /** True when this op is the one to tear. */
  private tick(): boolean {
    if (this.cutIn === 0) return false;
    return --this.cutIn === 0;
  }

  private tearPoint(length: number): number {
    const k = this.keepOverride ?? Math.floor(this.random() * length);
    return Math.max(0, Math.min(length, k));
  }

  read(offset: number, target: Uint8Array): void {
    this.checkPower("read");
    const len = target.length;
    this.bounds(offset, len, "read");
    this.s.reads++;
    this.s.bytesRead += len;
    spans(offset, len, (index, within, n, done) => {
      const sec = this.sectors.get(index);
      if (sec) target.set(sec.subarray(within, within + n), done);
      else target.fill(0xff, done, done + n);
    });
  }

  /** Program `data` at `offset` (old AND new). Throws FLASH_OUT_OF_BOUNDS, FLASH_POWER_CUT, FLASH_NOT_ERASED (strict). */
  write(offset: number, data: Uint8Array): void {
    this.checkPower("write");
    this.bounds(offset, data.length, "write");
    const torn = this.tick();
    let len = data.length;
    let partial = -1;
    if (torn) {
      len = this.tearPoint(data.length);
      if (len < data.length && this.keepOverride === undefined) partial = Math.floor(this.random() * 256);
    }
    this.s.writes++;
    this.s.bytesWritten += len;
    if (this.strict && !torn) this.checkErased(offset, data);
    this.program(offset, data, len);
    if (partial >= 0) this.program(offset + len, Uint8Array.of(data[len]! | partial), 1);
    if (torn) {
      this._powered = false;
      throw new PowerCut(`write 0x${offset.toString(16)}+${data.length} torn after ${len} bytes`);
    }
  }

  private checkErased(offset: number, data: Uint8Array): void {
    const cur = new Uint8Array(data.length);
    this.read(offset, cur);
    this.s.reads--;
    this.s.bytesRead -= data.length;
    for (let i = 0; i < data.length; i++) {
      if ((cur[i]! & data[i]!) !== data[i]!) throw new OtaError("FLASH_NOT_ERASED", `at 0x${(offset + i).toString(16)}`);
    }
  }

  private program(offset: number, data: Uint8Array, len: number): void {
    spans(offset, len, (index, within, n, done) => {
      let sec = this.sectors.get(index);
      if (sec && this.shared.has(index)) {
        sec = copySector(sec);
        this.sectors.set(index, sec);
        this.shared.delete(index);
      }
      if (!sec) {
        sec = takeSector();
        if (n < SECTOR_SIZE) sec.fill(0xff);
        sec.set(data.subarray(done, done + n), within);
        this.sectors.set(index, sec);
      } else {
        let over = 0;
        for (let i = 0; i < n; i++) {
          const old = sec[within + i]!;
          const d = data[done + i]!;
          if ((old & d) !== d) over = 1;
          sec[within + i] = old & d;
        }
        this.s.overwrites += over;
      }
    });
  }

  /** Erase one 4 KB sector (index) to 0xFF. Throws FLASH_OUT_OF_BOUNDS, FLASH_POWER_CUT. */
  erase(sectorIndex: number): void {
    this.checkPower("erase");
    if (!Number.isInteger(sectorIndex) || sectorIndex < 0 || sectorIndex >= this.sectorCount) {
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `erase of sector ${sectorIndex} outside 0..${this.sectorCount - 1}`);
    }
    const torn = this.tick();
    this.s.erases++;
    this.sectorErases[sectorIndex]!++;
    if (!torn) {
      const sec = this.sectors.get(sectorIndex);
      if (sec) {
        this.sectors.delete(sectorIndex);
        if (!this.shared.delete(sectorIndex)) giveSector(sec);
      }
      return;
    }
    const k = this.tearPoint(SECTOR_SIZE);
    let sec = this.sectors.get(sectorIndex);
    if (sec && this.shared.has(sectorIndex)) {
      sec = copySector(sec);
      this.sectors.set(sectorIndex, sec);
      this.shared.delete(sectorIndex);
    }
    if (sec) {
      sec.fill(0xff, 0, k);
      if (k === SECTOR_SIZE) {
        this.sectors.delete(sectorIndex);
        giveSector(sec);
      }
    }
    this._powered = false;
    throw new PowerCut(`erase of sector ${sectorIndex} torn after ${k} bytes`);
  }

  /** Erase a byte range (whole sectors). Throws FLASH_MISALIGNED plus erase's codes. */
  eraseRange(offset: number, length: number): void {
    if (offset % SECTOR_SIZE || length % SECTOR_SIZE) throw new OtaError("FLASH_MISALIGNED", `0x${offset.toString(16)}+${length}`);
    for (let a = offset; a < offset + length; a += SECTOR_SIZE) this.erase(a / SECTOR_SIZE);
  }

  /** The whole chip as one raw image (erased bytes 0xFF). Not counted. */
  toBytes(): Uint8Array {
    this.live("toBytes()");
    const out = new Uint8Array(this.size).fill(0xff);
    for (const [i, sec] of this.sectors) out.set(sec, i * SECTOR_SIZE);
    return out;
  }

  /** A chip holding `bytes` (its size is the chip size); all-0xFF sectors stay sparse. */
  static fromBytes(bytes: Uint8Array, options: Omit<SimFlashOptions, "size"> = {}): SimFlash {
    const f = new SimFlash({ ...options, size: bytes.length });
    for (let i = 0; i < f.sectorCount; i++) {
      const sec = bytes.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE);
      if (!isErased(sec)) f.sectors.set(i, copySector(sec));
    }
    return f;
  }

  /**
   * A copy of the content (fresh counters, powered, same strictness): cloning a fleet from one
   * device. Copy-on-write: sectors are shared until either side writes one, so 1,000 clones of
   * a chip holding a 1.5 MB image cost little more than one.
   */
  clone(seed?: number): SimFlash {
    this.live("clone()");
    const f = new SimFlash({ size: this.size, seed: seed ?? 1, strict: this.strict });
    for (const [i, sec] of this.sectors) {
      f.sectors.set(i, sec);
      f.shared.add(i);
      this.shared.add(i);
    }
    return f;
  }

  save(path: string): void {
    writeFileSync(path, this.toBytes());
  }

  /** Load a raw image; throws FILE_NOT_FOUND, RangeError when its size is not a multiple of 4 KB. */
  static load(path: string, options: Omit<SimFlashOptions, "size"> = {}): SimFlash {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new OtaError("FILE_NOT_FOUND", `${path}: ${(e as Error).message}`);
    }
    return SimFlash.fromBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), options);
  }
}

export function isErased(b: Uint8Array): boolean {
  if ((b.byteOffset & 3) === 0 && (b.length & 3) === 0) {
    const w = new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let i = 0; i < w.length; i++) if (w[i] !== -1) return false;
    return true;
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0xff) return false;
  return true;
}

/** Walk [offset, offset + len) sector by sector: (sector index, offset in it, bytes, bytes before). */
function spans(offset: number, len: number, visit: (index: number, within: number, n: number, done: number) => void): void {
  for (let done = 0; done < len; ) {
    const addr = offset + done;
    const index = Math.floor(addr / SECTOR_SIZE);
    const within = addr - index * SECTOR_SIZE;
    const n = Math.min(SECTOR_SIZE - within, len - done);
    visit(index, within, n, done);
    done += n;
  }
}
