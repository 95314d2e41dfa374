/*
 * Issue 30, item 2: the simulator's otadata and boot decisions against ESP-IDF v6.0's own C.
 * ESP-IDF's functions (esp_ota_ops.c, bootloader_utility.c, bootloader_common_loader.c,
 * esp_efuse_fields.c: test/device/idf-otadata/extract.ts names them) are copied out of
 * ../shared/esp-idf and built with the host's gcc around test/device/idf-otadata/harness.c (stubs:
 * otadata over a file, image validity and secure_version from the case, a 32-bit eFuse field), once
 * without and once with CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK. Our side: modules/bootctl.ts and
 * host-sim/chip/bootloader.ts on SIM's chip with real images. Over the same flash states:
 *  - every pair of entries (seq x state x CRC right/wrong, labels erased or not) for 2 and 3 OTA slots:
 *    boot (anti-rollback off and on), set boot slot, mark valid, mark invalid, state of each slot,
 *    rollback possible;
 *  - seeded random sequences of update / self-test pass / fail / corrupt slot / boot with power cut
 *    at any flash operation (torn as SIM tears it; both sides go on from the torn bytes).
 * Every result, every erase and write (offset and bytes) and the otadata bytes after must be equal.
 * Skipped, with the reason, without gcc or without ESP-IDF's source.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO } from "../../bench/moddable-esp32";
import { extractedSource } from "./idf-otadata/extract";
import { SimChip } from "../../host-sim/chip/chip";
import { parsePartitionCsv } from "../../host-sim/chip/partition-table";
import { boot } from "../../host-sim/chip/bootloader";
import { buildImage } from "../../host-sim/chip/image-builder";
import { PowerCut } from "../../host-sim/chip/flash";
import { BootControl, FACTORY_SLOT } from "../../modules/bootctl";
import { OtaState, OTA_SECTOR, seqCrc } from "../../modules/otadata";
import { codeOf } from "../../modules/errors";

const IDF = [process.env.XSOTA_ESP_IDF, resolve(REPO, "..", "shared", "esp-idf")].find((p) => p && existsSync(join(p, "components", "app_update", "esp_ota_ops.c")));
const CC = [process.env.XSOTA_HOST_CC, "gcc", "cc"].find((c) => c && spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0);
const skip = !IDF ? "no ESP-IDF source ($XSOTA_ESP_IDF or ../shared/esp-idf)" : !CC ? "no host C compiler (gcc, cc)" : undefined;
if (skip) console.warn(`test/device/idf-otadata-diff skipped: ${skip}`);

const OUT = join(REPO, "out", "idf-otadata");
const OTADATA = 0xd000;

/** Build the harness (plain or anti-rollback); returns the program's path. */
function build(anti: boolean): string {
  mkdirSync(OUT, { recursive: true });
  const commit = /commit ([0-9a-f]{7,40})/.exec(readFileSync(join(IDF!, "README.md"), "utf8"))?.[1] ?? "unknown";
  writeFileSync(join(OUT, "idf_extracted.c"), extractedSource(IDF!, commit));
  const dir = join(OUT, anti ? "anti" : "plain");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "sdkconfig.h"), [
    "#define CONFIG_IDF_TARGET_ESP32 1", '#define CONFIG_IDF_TARGET "esp32"', "#define CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE 1",
    // ESP-IDF's default for the ESP32 (its eFuse field is 32 bits)
    "#define CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD 32", "#define CONFIG_BOOTLOADER_LOG_LEVEL 0", "#define CONFIG_LOG_DEFAULT_LEVEL 0",
    "#define CONFIG_LOG_MAXIMUM_LEVEL 0", "#define BOOTLOADER_BUILD 1", ...(anti ? ["#define CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK 1"] : []), "",
  ].join("\n"));
  const c = join(IDF!, "components");
  const inc = ["esp_common/include", "esp_partition/include", "esp_blockdev/include", "bootloader_support/include", "bootloader_support/private_include",
    "esp_app_format/include", "esp_bootloader_format/include", "app_update/include", "soc/esp32/include", "soc/esp32/register", "soc/include",
    "efuse/include", "efuse/esp32/include", "esp_rom/include", "log/include"].flatMap((d) => ["-I", join(c, d)]);
  const exe = join(dir, "idfota");
  const r = spawnSync(CC!, ["-O2", "-Wall", "-Wno-unused-function", "-Wno-unused-variable", "-Werror", "-o", exe, "-I", dir, "-I", OUT, ...inc, join(REPO, "test", "device", "idf-otadata", "harness.c")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${CC} failed:\n${r.stderr}`);
  return exe;
}

/** Run the C side over many cases at once; one output line per case. */
function runC(exe: string, lines: string[]): string[] {
  const r = spawnSync(exe, [join(OUT, `otadata-${process.pid}.bin`)], { input: lines.join("\n") + "\n", encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`idfota exited ${r.status}: ${r.stderr}`);
  return r.stdout.trimEnd().split("\n");
}

// ---- our side ----

type Kind = string; // "v<sv>" valid image, "c<sv>" readable desc but invalid image, "e" erased
interface Layout { n: number; factory: boolean }
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const images = new Map<string, Uint8Array>();
function imageOf(kind: Kind): Uint8Array | undefined {
  if (kind === "e") return undefined;
  let img = images.get(kind);
  if (!img) {
    img = buildImage({ project: "xsota-diff", version: `1.${kind.slice(1)}.0`, size: 4096, behavior: "healthy", secureVersion: Number(kind.slice(1)), chipId: 0 });
    if (kind[0] === "c") { img = img.slice(); img[img.length - 40] ^= 0xff; }
    images.set(kind, img);
  }
  return img;
}

/** A chip per layout: otadata at 0xd000, apps of 64 KB from 0x10000 (factory first when present). */
class Device {
  readonly chip: SimChip;
  readonly kinds: Kind[];
  readonly ops: string[] = [];
  private logging = false;
  constructor(readonly layout: Layout, kinds: Kind[], efuse = 0) {
    const lines = ["nvs, data, nvs, 0x9000, 0x4000", "otadata, data, ota, 0xd000, 0x2000"];
    if (layout.factory) lines.push("factory, app, factory, 0x10000, 0x10000");
    for (let i = 0; i < layout.n; i++) lines.push(`app${i}, app, ota_${i}, ${0x10000 * (i + (layout.factory ? 2 : 1))}, 0x10000`);
    this.chip = SimChip.create({ table: parsePartitionCsv(lines.join("\n") + "\n", { flashSize: 1 << 20 }), flashSize: 1 << 20, efuseSecureVersion: efuse });
    this.kinds = kinds.slice();
    kinds.forEach((k, i) => this.setKind(i, k));
    const f = this.chip.flash;
    const write = f.write.bind(f);
    const erase = f.erase.bind(f);
    f.write = (offset: number, data: Uint8Array) => {
      if (this.logging) this.ops.push(` W${offset - OTADATA}:${hex(data)}`);
      write(offset, data);
    };
    f.erase = (sector: number) => {
      if (this.logging) this.ops.push(` E${sector - OTADATA / OTA_SECTOR}`);
      erase(sector);
    };
  }
  /** App index i: the factory first when there is one, then ota_0.. */
  private part(i: number) {
    return this.layout.factory ? (i === 0 ? this.chip.partition("factory") : this.chip.slot(i - 1)) : this.chip.slot(i);
  }
  setKind(i: number, k: Kind): void {
    this.kinds[i] = k;
    const p = this.part(i);
    p.eraseBlock(0);
    const img = imageOf(k);
    if (img) p.write(0, img);
  }
  get otadata(): string {
    const b = new Uint8Array(64);
    const p = this.chip.partition("otadata");
    p.read(0, b.subarray(0, 32));
    p.read(OTA_SECTOR, b.subarray(32));
    return hex(b);
  }
  set otadata(h: string) {
    const p = this.chip.partition("otadata");
    const b = Buffer.from(h, "hex");
    p.eraseBlock(0);
    p.write(0, b.subarray(0, 32));
    p.eraseBlock(1);
    p.write(OTA_SECTOR, b.subarray(32));
  }
  /** The case line for the C side, from this device's state now. */
  line(op: string, target: number, anti: boolean, cut: number): string {
    const slots = this.kinds.join(",");
    return `${op} ${this.layout.n} ${this.layout.factory ? 1 : 0} ${target} ${anti ? 1 : 0} ${this.chip.efuseSecureVersion} ${slots} ${this.otadata} ${cut}`;
  }
  /** Can the image at `slot` (FACTORY_SLOT: the factory app) boot: what IDF's image_validate says. */
  valid(slot: number): boolean {
    if (slot === FACTORY_SLOT) return this.layout.factory && this.kinds[0]![0] === "v";
    return this.kinds[slot + (this.layout.factory ? 1 : 0)]![0] === "v";
  }
  /** Run one operation as our TypeScript does it; the output line the C side must print. */
  run(op: string, target: number, anti: boolean, cut: number, keep?: number): { out: string; booted?: number } {
    const f = this.chip.flash;
    this.ops.length = 0;
    if (cut) f.cutPowerAt(cut, keep);
    this.logging = true;
    let result = "";
    let booted: number | undefined;
    try {
      const bc = () => new BootControl(this.chip.flashPort(0));
      switch (op) {
        case "boot": {
          const r = boot(this.chip, { antiRollback: anti });
          if (r.kind === "booted") { booted = r.slot; result = `boot:${r.slot}`; } else result = "bricked";
          break;
        }
        case "set": bc().setBootSlot(target); result = "err:0"; break;
        case "valid": result = wrap(() => bc().markActive(OtaState.VALID)); break;
        case "invalid": {
          let ok = true;
          result = wrap(() => { ok = bc().markInvalid((s) => this.valid(s)); });
          if (!ok) result = "err:5381"; // ESP_ERR_OTA_ROLLBACK_FAILED
          break;
        }
        case "state": { const s = bc().stateOf(target); result = s === undefined ? "err:261" : `state:${s}`; break; } // ESP_ERR_NOT_FOUND
        case "possible": result = `possible:${bc().rollbackPossible((s) => this.valid(s)) ? 1 : 0}`; break;
        default: throw new Error(op);
      }
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      result = "cut";
    } finally {
      this.logging = false;
      f.cancelPowerCut();
      if (!f.powered) f.powerOn();
    }
    return { out: `${result} ${this.chip.efuseSecureVersion}${this.ops.join("")} | ${this.otadata}`, booted };
  }
}

function wrap(f: () => void): string {
  try {
    f();
    return "err:0";
  } catch (e) {
    if (codeOf(e) === "OTADATA_STATE") return "err:-1"; // ESP_FAIL
    throw e;
  }
}

// ---- the flash states ----

const SEQS = [0xffffffff, 0, 1, 2, 3, 4, 0x10001]; // IDF counts up to the next seq one lap at a time: seqs near 2^32 would take seconds each
const STATES = [OtaState.NEW, OtaState.PENDING_VERIFY, OtaState.VALID, OtaState.INVALID, OtaState.ABORTED, OtaState.UNDEFINED];
function entryHex(seq: number, state: number, crcRight: boolean, label: boolean): string {
  const b = new Uint8Array(32).fill(0xff);
  const v = new DataView(b.buffer);
  v.setUint32(0, seq >>> 0, true);
  if (label) for (let i = 0; i < 20; i++) b[4 + i] = 0x61 + i;
  v.setUint32(24, state >>> 0, true);
  v.setUint32(28, crcRight ? seqCrc(seq) : (seqCrc(seq) ^ 0x5a) >>> 0, true);
  return hex(b);
}
const ENTRIES: string[] = [];
for (const seq of SEQS) for (const state of STATES) for (const crc of [true, false]) ENTRIES.push(entryHex(seq, state, crc, ENTRIES.length % 3 === 1));

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

interface Case { line: string; want: string; what: string }
const plainExe = skip ? "" : build(false);
const antiExe = skip ? "" : build(true);
afterAll(() => { /* out/idf-otadata is kept: the generated source is worth reading when a case fails */ });

function compare(exe: string, cases: Case[]): void {
  const got = runC(exe, cases.map((c) => c.line));
  expect(got.length).toBe(cases.length);
  const bad: string[] = [];
  for (let i = 0; i < cases.length && bad.length < 5; i++) {
    const g = cases[i]!.want.includes(" | ") ? got[i] : got[i]!.replace(/ \| [0-9a-f]+$/, "");
    if (g !== cases[i]!.want) bad.push(`${cases[i]!.what}\n  case  ${cases[i]!.line}\n  IDF   ${g}\n  ours  ${cases[i]!.want}`);
  }
  expect(bad.join("\n")).toBe("");
}

/** Image layouts the exhaustive cases cycle through (factory first when present). */
const KINDS: Record<string, Kind[][]> = {
  "2": [["v1", "v1"], ["v1", "c1"], ["c1", "v1"], ["e", "v2"], ["v2", "e"], ["c1", "c1"], ["v0", "v3"], ["v33", "v1"]],
  "3": [["v1", "v1", "v1"], ["c1", "v1", "v2"], ["v2", "e", "v1"], ["e", "e", "v1"], ["v1", "c2", "c3"], ["v3", "v0", "e"]],
};

describe.skipIf(skip)("otadata and boot decisions equal ESP-IDF v6.0's own C", () => {
  for (const n of [2, 3]) {
    it(`every pair of entries (seq x state x CRC, ${ENTRIES.length ** 2} pairs), ${n} OTA slots: every operation`, () => {
      const plain: Case[] = [];
      const anti: Case[] = [];
      const devs = new Map<string, Device>();
      let k = 0;
      for (const e0 of ENTRIES) for (const e1 of ENTRIES) {
        k++;
        const factory = k % 2 === 0;
        const kinds = KINDS[String(n)]![k % KINDS[String(n)]!.length]!;
        const all = factory ? [k % 3 === 0 ? "c1" : "v1", ...kinds] : kinds;
        const key = `${factory}:${all.join(",")}`;
        let dev = devs.get(key);
        if (!dev) devs.set(key, (dev = new Device({ n, factory }, all)));
        const state = e0 + e1;
        const add = (list: Case[], op: string, target: number, isAnti: boolean, efuse = 0) => {
          dev!.otadata = state;
          (dev!.chip as unknown as { _efuse: number })._efuse = efuse;
          const line = dev!.line(op, target, isAnti, 0);
          list.push({ line, want: dev!.run(op, target, isAnti, 0).out, what: `${op} ${target} anti=${isAnti}` });
        };
        add(plain, "boot", 0, false);
        add(anti, "boot", 0, true, k % 4);
        for (let s = 0; s < n; s++) if (dev.valid(s)) add(plain, "set", s, false);
        add(plain, "valid", 0, false);
        add(plain, "invalid", 0, false);
        add(plain, "possible", 0, false);
        for (let s = 0; s < n; s++) add(plain, "state", s, false);
      }
      compare(plainExe, plain);
      compare(antiExe, anti);
    });
  }

  it("seeded random sequences: update, self-test pass/fail, corrupt slot, boot, power cut at any flash operation", () => {
    const plain: Case[] = [];
    const anti: Case[] = [];
    for (let seed = 1; seed <= 120; seed++) {
      const rnd = prng(seed * 7919);
      const pick = <T,>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
      const n = seed % 3 === 0 ? 3 : 2;
      const factory = seed % 4 === 0;
      const useAnti = seed % 2 === 0;
      const list = useAnti ? anti : plain;
      let sv = 1;
      const dev = new Device({ n, factory }, [...(factory ? ["v1"] : []), "v1", ...Array<Kind>(n - 1).fill("e")], useAnti ? 1 : 0);
      const idx = (slot: number) => slot + (factory ? 1 : 0);
      let running: number | undefined;
      const step = (op: string, target = 0) => {
        // a power cut at any of the next operations, torn where SIM tears it
        const cut = rnd() < 0.3 ? 1 + Math.floor(rnd() * 4) : 0;
        const keep = cut && rnd() < 0.5 ? Math.floor(rnd() * 33) : undefined;
        const line = dev.line(op, target, useAnti, cut);
        const r = dev.run(op, target, useAnti, cut, keep);
        // after a cut IDF stops before the torn operation and SIM tears it: the bytes after are not compared
        const want = r.out.startsWith("cut ") ? r.out.replace(/ \| [0-9a-f]+$/, "") : r.out;
        list.push({ line, want, what: `seed ${seed} ${op} ${target}` });
        return r;
      };
      for (let i = 0; i < 40; i++) {
        const what = running === undefined ? "boot" : pick(["update", "update", "pass", "fail", "corrupt", "boot"] as const);
        if (what === "boot") {
          const r = step("boot");
          running = r.booted;
          if (r.out.startsWith("bricked")) dev.setKind(idx(0), `v${sv}`); // reflashed by hand
        } else if (what === "update" && !useAnti) {
          const target = running === undefined || running === FACTORY_SLOT ? 0 : (running + 1) % n;
          sv = Math.min(sv + (rnd() < 0.5 ? 1 : 0), 34);
          dev.setKind(idx(target), `v${sv}`);
          step("set", target);
        } else if (what === "pass" && !useAnti) step("valid");
        else if (what === "fail" && !useAnti) step("invalid");
        else if (what === "corrupt") dev.setKind(idx(Math.floor(rnd() * n)), pick(["c1", "e"]));
        else if (useAnti) {
          // the app side with anti-rollback on is not compared (it raises the eFuse from the running partition); the bootloader is
          const target = running === undefined || running === FACTORY_SLOT ? 0 : (running + 1) % n;
          sv = Math.min(sv + (rnd() < 0.5 ? 1 : 0), 34);
          dev.setKind(idx(target), `v${sv}`);
          new BootControl(dev.chip.flashPort(0)).setBootSlot(target);
          if (rnd() < 0.5) step("boot");
        }
        if (rnd() < 0.15 && !useAnti) step("possible");
      }
    }
    compare(plainExe, plain);
    compare(antiExe, anti);
  });
});
