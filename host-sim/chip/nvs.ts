/*
 * SimStore: the StorePort (Moddable Preference) of the simulated chip, persisted in the `nvs`
 * partition through counted SimFlash operations, atomic per set under a power cut at any op.
 *
 * The on-flash format is OURS, not ESP-IDF's NVS format (a real device's Preference data is
 * not readable here, nor the reverse). All integers little-endian. Each 4 KB sector:
 *   @0  u32 magic 0x564E5358 ("XSNV")     @4 u32 generation (higher = newer)
 *   @8  u32 victim generation (0xFFFFFFFF unless written by a compaction)
 *   @12 u32 CRC-32 of bytes 0..11         @16 u32 done word (0xFFFFFFFF; 0 once a compaction's copy is complete)
 *   @20..31 0xFF; records from @32, each 4-byte aligned, 0xFF up to the end of the log:
 *   record: u8 kind (1 set, 2 delete), u8 type (0 int32, 1 string UTF-8, 2 bool, 3 bytes),
 *           u8 domain length, u8 key length, u16 value length, u16 0, u32 CRC-32 of bytes 0..7 and
 *           the payload, then domain, key, value; 0xFF padding to 4.
 * The log is every sector in generation order; the last record of a key wins, a delete removes it.
 * A set is one write of one record: torn, its CRC fails and the old value stands (the sector is
 * then closed to further appends). One sector is kept free for compaction: copy the oldest
 * sector's live records into it (header + records, one write), write its done word, erase the
 * victim. At mount, a sector with a bad header is erased; a compaction with the done word set
 * erases its victim if still present, one without it is erased itself (its victim still holds
 * everything). Every step is idempotent, so a cut during mount is safe too.
 */
import type { FlashPartition, StorePort, StoreValue } from "../../modules/ports";
import { OtaError } from "../../modules/errors";
import { crc32 } from "../../modules/otadata";

const MAGIC = 0x564e5358;
const NONE = 0xffffffff;
const HDR = 32;
const REC_HDR = 12;
export const MAX_NAME = 15;
export const MAX_VALUE = 4000;
const T_INT = 0, T_STR = 1, T_BOOL = 2, T_BYTES = 3;

interface Sector {
  index: number;
  used: boolean;
  gen: number;
  victim: number;
  done: boolean;
  /** Next append offset; the sector size when closed. */
  ptr: number;
}

interface Live {
  domain: string;
  key: string;
  type: number;
  value: Uint8Array;
  sector: number;
  size: number;
}

export interface StoreUsage {
  sectors: number;
  sectorSize: number;
  /** Bytes of the records that hold current values. */
  liveBytes: number;
  /** Bytes of log written (live and dead records, sector headers excluded). */
  usedBytes: number;
  /** Bytes still appendable without a compaction (the spare sector excluded). */
  freeBytes: number;
  keys: number;
  compactions: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 255; b[o + 1] = (v >>> 8) & 255; b[o + 2] = (v >>> 16) & 255; b[o + 3] = (v >>> 24) & 255;
}
const mapKey = (d: string, k: string) => `${d}\u0000${k}`;

function encodeRecord(kind: number, type: number, domain: Uint8Array, key: Uint8Array, value: Uint8Array): Uint8Array {
  const len = REC_HDR + domain.length + key.length + value.length;
  const out = new Uint8Array((len + 3) & ~3).fill(0xff);
  out[0] = kind; out[1] = type; out[2] = domain.length; out[3] = key.length;
  out[4] = value.length & 255; out[5] = value.length >> 8; out[6] = 0; out[7] = 0;
  out.set(domain, REC_HDR);
  out.set(key, REC_HDR + domain.length);
  out.set(value, REC_HDR + domain.length + key.length);
  const crc = crc32(out.subarray(REC_HDR, len), crc32(out.subarray(0, 8)));
  put32(out, 8, crc);
  return out;
}

function sectorHeader(gen: number, victim: number): Uint8Array {
  const h = new Uint8Array(HDR).fill(0xff);
  put32(h, 0, MAGIC); put32(h, 4, gen); put32(h, 8, victim); put32(h, 12, crc32(h.subarray(0, 12)));
  return h;
}

export class SimStore implements StorePort {
  private sectors: Sector[] = [];
  private live = new Map<string, Live>();
  private mounted = false;
  private epoch = -1;
  private compactions = 0;
  private readonly ss: number;
  private readonly n: number;

  /** `epoch` changes when the chip loses power: the store then mounts afresh from flash. */
  constructor(private part: FlashPartition, private currentEpoch: () => number = () => 0) {
    this.ss = part.blockSize;
    this.n = Math.floor(part.byteLength / part.blockSize);
    if (this.n < 2) throw new RangeError("the nvs partition needs at least 2 sectors");
  }

  /** Throws STORE_KEY, FLASH_POWER_CUT. */
  get(domain: string, key: string): StoreValue | undefined {
    this.checkNames(domain, key);
    this.ensure();
    const e = this.live.get(mapKey(domain, key));
    if (!e) return undefined;
    switch (e.type) {
      case T_INT: return (e.value[0]! | (e.value[1]! << 8) | (e.value[2]! << 16) | (e.value[3]! << 24));
      case T_BOOL: return e.value[0] !== 0;
      case T_STR: return dec.decode(e.value);
      default: return e.value.slice().buffer;
    }
  }

  /** Commits at once. Throws STORE_KEY, STORE_VALUE (float, too large, wrong type), STORE_FULL, FLASH_POWER_CUT. */
  set(domain: string, key: string, value: StoreValue): void {
    const [d, k] = this.checkNames(domain, key);
    let type: number;
    let bytes: Uint8Array;
    if (typeof value === "number") {
      if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new OtaError("STORE_VALUE", `${domain}/${key}: ${value} is not a 32-bit integer (float unsupported)`);
      type = T_INT; bytes = new Uint8Array(4); put32(bytes, 0, value >>> 0);
    } else if (typeof value === "boolean") {
      type = T_BOOL; bytes = Uint8Array.of(value ? 1 : 0);
    } else if (typeof value === "string") {
      type = T_STR; bytes = enc.encode(value);
    } else if (value instanceof ArrayBuffer) {
      type = T_BYTES; bytes = new Uint8Array(value.slice(0));
    } else throw new OtaError("STORE_VALUE", `${domain}/${key}: unsupported value type ${typeof value}`);
    // nvs_set_str's 4000 includes the NUL: 3999 bytes of text (src/store.ts refuses the same).
    const max = type === T_STR ? MAX_VALUE - 1 : MAX_VALUE;
    if (bytes.length > max) throw new OtaError("STORE_VALUE", `${domain}/${key}: ${bytes.length} bytes > ${max}`);
    this.ensure();
    const old = this.live.get(mapKey(domain, key));
    if (old && old.type === type && old.value.length === bytes.length && old.value.every((b, i) => b === bytes[i])) return;
    this.mutate(() => this.append(encodeRecord(1, type, d, k, bytes), { domain, key, type, value: bytes }));
  }

  /** Throws STORE_KEY, STORE_FULL, FLASH_POWER_CUT. Deleting a missing key does nothing. */
  delete(domain: string, key: string): void {
    const [d, k] = this.checkNames(domain, key);
    this.ensure();
    if (!this.live.has(mapKey(domain, key))) return;
    this.mutate(() => this.append(encodeRecord(2, 0, d, k, new Uint8Array(0)), { domain, key, type: -1, value: new Uint8Array(0) }));
  }

  keys(domain: string): string[] {
    this.ensure();
    const out: string[] = [];
    for (const e of this.live.values()) if (e.domain === domain) out.push(e.key);
    return out;
  }

  usage(): StoreUsage {
    this.ensure();
    let liveBytes = 0;
    for (const e of this.live.values()) liveBytes += e.size;
    let usedBytes = 0;
    let freeBytes = 0;
    const free = this.sectors.filter((s) => !s.used).length;
    const active = this.active();
    for (const s of this.sectors) if (s.used) usedBytes += s.ptr - HDR;
    if (active) freeBytes += this.ss - active.ptr;
    freeBytes += Math.max(0, free - 1) * (this.ss - HDR);
    return { sectors: this.n, sectorSize: this.ss, liveBytes, usedBytes, freeBytes, keys: this.live.size, compactions: this.compactions };
  }

  private checkNames(domain: string, key: string): [Uint8Array, Uint8Array] {
    if (typeof domain !== "string" || typeof key !== "string") throw new OtaError("STORE_KEY", "domain and key must be strings");
    const d = enc.encode(domain);
    const k = enc.encode(key);
    if (!d.length || d.length > MAX_NAME || !k.length || k.length > MAX_NAME) throw new OtaError("STORE_KEY", `'${domain}'/'${key}': 1..${MAX_NAME} bytes each`);
    return [d, k];
  }

  private mutate(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.mounted = false; // memory may be ahead of or behind flash: mount again
      throw e;
    }
  }

  private active(): Sector | undefined {
    let a: Sector | undefined;
    for (const s of this.sectors) if (s.used && (!a || s.gen > a.gen)) a = s;
    return a;
  }

  private ensure(): void {
    if (!this.mounted || this.epoch !== this.currentEpoch()) this.mount();
  }

  private readSector(i: number): Uint8Array {
    const b = new Uint8Array(this.ss);
    this.part.read(i * this.ss, b);
    return b;
  }

  private mount(): void {
    this.mounted = false;
    const raw: Uint8Array[] = [];
    for (let i = 0; i < this.n; i++) raw.push(this.readSector(i));
    // 1. sectors that are neither erased nor headed: torn header or torn erase
    for (let i = 0; i < this.n; i++) {
      if (!validHeader(raw[i]!) && !raw[i]!.every((b) => b === 0xff)) {
        this.part.eraseBlock(i);
        raw[i] = new Uint8Array(this.ss).fill(0xff);
      }
    }
    // 2. interrupted compactions
    const gens = new Map<number, number>();
    for (let i = 0; i < this.n; i++) if (validHeader(raw[i]!)) gens.set(u32(raw[i]!, 4), i);
    for (let i = 0; i < this.n; i++) {
      const b = raw[i]!;
      if (!validHeader(b) || u32(b, 8) === NONE) continue;
      const v = gens.get(u32(b, 8));
      if (v === undefined) continue;
      const target = u32(b, 16) === 0 ? v : i;
      this.part.eraseBlock(target);
      raw[target] = new Uint8Array(this.ss).fill(0xff);
      gens.delete(u32(b, 8));
    }
    // 3. replay the log
    this.sectors = [];
    this.live.clear();
    for (let i = 0; i < this.n; i++) {
      const b = raw[i]!;
      if (!validHeader(b)) { this.sectors.push({ index: i, used: false, gen: 0, victim: NONE, done: false, ptr: HDR }); continue; }
      this.sectors.push({ index: i, used: true, gen: u32(b, 4), victim: u32(b, 8), done: u32(b, 16) === 0, ptr: HDR });
    }
    for (const s of [...this.sectors].filter((x) => x.used).sort((a, b) => a.gen - b.gen)) s.ptr = this.replay(s, raw[s.index]!);
    this.mounted = true;
    this.epoch = this.currentEpoch();
  }

  /** Apply a sector's records; returns its append pointer (sector size when closed by a torn record). */
  private replay(s: Sector, b: Uint8Array): number {
    let p = HDR;
    while (p + REC_HDR <= this.ss) {
      if (b[p] === 0xff && b.subarray(p, this.ss).every((x) => x === 0xff)) return p;
      const kind = b[p]!, type = b[p + 1]!, dl = b[p + 2]!, kl = b[p + 3]!, vl = b[p + 4]! | (b[p + 5]! << 8);
      const len = REC_HDR + dl + kl + vl;
      if ((kind !== 1 && kind !== 2) || dl < 1 || dl > MAX_NAME || kl < 1 || kl > MAX_NAME || vl > MAX_VALUE || p + len > this.ss) return this.ss;
      if (crc32(b.subarray(p + REC_HDR, p + len), crc32(b.subarray(p, p + 8))) !== u32(b, p + 8)) return this.ss;
      const domain = dec.decode(b.subarray(p + REC_HDR, p + REC_HDR + dl));
      const key = dec.decode(b.subarray(p + REC_HDR + dl, p + REC_HDR + dl + kl));
      const size = (len + 3) & ~3;
      if (kind === 2) this.live.delete(mapKey(domain, key));
      else this.live.set(mapKey(domain, key), { domain, key, type, value: b.slice(p + REC_HDR + dl + kl, p + len), sector: s.index, size });
      p += size;
    }
    return p;
  }

  private append(rec: Uint8Array, entry: Omit<Live, "sector" | "size">): void {
    for (let attempt = 0; attempt <= this.n; attempt++) {
      const a = this.active();
      if (a && a.ptr + rec.length <= this.ss) {
        this.part.write(a.index * this.ss + a.ptr, rec);
        a.ptr += rec.length;
        this.record(entry, a.index, rec.length);
        return;
      }
      const free = this.sectors.filter((s) => !s.used);
      if (free.length >= 2 || (free.length === 1 && !a)) {
        const s = free[0]!;
        const gen = (a?.gen ?? 0) + 1;
        const buf = new Uint8Array(HDR + rec.length);
        buf.set(sectorHeader(gen, NONE)); buf.set(rec, HDR);
        Object.assign(s, { used: true, gen, victim: NONE, done: false, ptr: HDR });
        this.part.write(s.index * this.ss, buf);
        s.ptr = HDR + rec.length;
        this.record(entry, s.index, rec.length);
        return;
      }
      if (free.length === 0) break;
      this.compact(free[0]!);
    }
    throw new OtaError("STORE_FULL", `${this.live.size} keys in ${this.n} sectors of ${this.ss} bytes`);
  }

  private record(entry: Omit<Live, "sector" | "size">, sector: number, size: number): void {
    const k = mapKey(entry.domain, entry.key);
    if (entry.type < 0) this.live.delete(k);
    else this.live.set(k, { ...entry, sector, size });
  }

  /** Move the oldest sector's live records into the spare sector, then erase it. */
  private compact(spare: Sector): void {
    const used = this.sectors.filter((s) => s.used).sort((a, b) => a.gen - b.gen);
    const victim = used[0]!;
    const maxGen = used[used.length - 1]!.gen;
    const moving = [...this.live.values()].filter((e) => e.sector === victim.index);
    const recs = moving.map((e) => encodeRecord(1, e.type, enc.encode(e.domain), enc.encode(e.key), e.value));
    const buf = new Uint8Array(HDR + recs.reduce((n, r) => n + r.length, 0));
    buf.set(sectorHeader(maxGen + 1, victim.gen));
    let o = HDR;
    for (const r of recs) { buf.set(r, o); o += r.length; }
    const base = spare.index * this.ss;
    this.part.write(base, buf);
    this.part.write(base + 16, new Uint8Array(4));
    this.part.eraseBlock(victim.index);
    Object.assign(spare, { used: true, gen: maxGen + 1, victim: victim.gen, done: true, ptr: o });
    Object.assign(victim, { used: false, gen: 0, victim: NONE, done: false, ptr: HDR });
    for (const e of moving) e.sector = spare.index;
    this.compactions++;
  }
}

function validHeader(b: Uint8Array): boolean {
  return u32(b, 0) === MAGIC && u32(b, 12) === crc32(b.subarray(0, 12));
}
