import { describe, it, expect, vi, afterEach } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../cli/main";
import { SimChip } from "../../host-sim/chip/chip";
import { boot } from "../../host-sim/chip/bootloader";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());
const dir = mkdtempSync(join(tmpdir(), "xsota-cli-"));
const f = (n: string) => join(dir, n);

describe("xsota image", () => {
  it("build writes an image of the requested size that info validates", async () => {
    const b = await run("image", "build", "--version", "2.1.3", "--secure-version", "4", "--project", "sensor", "--size", "1.2M", "--behavior", "hang", "-o", f("fw.bin"), "--json");
    expect(b.code).toBe(0);
    expect(JSON.parse(b.out)).toMatchObject({ length: 1258304, version: "2.1.3", behavior: "hang" });
    expect(readFileSync(f("fw.bin")).length).toBe(1258304);
    const i = await run("image", "info", f("fw.bin"), "--json");
    expect(i.code).toBe(0);
    expect(JSON.parse(i.out)).toMatchObject({ valid: true, behavior: "hang", appDesc: { version: "2.1.3", secureVersion: 4, projectName: "sensor" }, header: { chip: "esp32", hashAppended: true } });
    const t = await run("image", "info", f("fw.bin"));
    expect(t.out).toMatch(/sensor, version 2\.1\.3, secure_version 4/);
  });
  it("info exits 1 with the code on a corrupt image; usage and missing files are told apart", async () => {
    const img = readFileSync(f("fw.bin"));
    img[4000] ^= 1;
    writeFileSync(f("bad.bin"), img);
    const bad = await run("image", "info", f("bad.bin"));
    expect(bad.code).toBe(1);
    expect(bad.out + bad.err).toMatch(/IMAGE_CHECKSUM/);
    expect((await run("image", "build", "--version", "1.0.0")).code).toBe(2);
    expect((await run("image", "build", "--version", "1.0.0", "--behavior", "dance", "-o", f("x.bin"))).code).toBe(2);
    expect((await run("image", "build", "--version", "1.0.0", "--size", "12", "-o", f("x.bin"))).code).toBe(2);
    expect((await run("image", "frobnicate")).code).toBe(2);
    expect((await run("image", "info", f("missing.bin"))).code).toBe(3);
    const h = await run("image", "--help");
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Usage: xsota image build/);
  });
  it("--chip makes wrong-chip test images", async () => {
    await run("image", "build", "--version", "1.0.0", "--chip", "esp32c3", "-o", f("c3.bin"));
    expect(JSON.parse((await run("image", "info", f("c3.bin"), "--json")).out).header).toMatchObject({ chipId: 5, chip: "esp32c3" });
  });
});

describe("xsota flash", () => {
  it("create lays out a freshly flashed devkit; show reads it back", async () => {
    await run("image", "build", "--version", "1.0.0", "-o", f("v1.bin"));
    const c = await run("flash", "create", "-o", f("flash.bin"), "--image", f("v1.bin"));
    expect(c.code).toBe(0);
    const raw = readFileSync(f("flash.bin"));
    expect(raw.length).toBe(4 * 1024 * 1024);
    expect([raw[0x8000], raw[0x8001], raw[0x10000], raw[0xe000], raw[0x1000]]).toEqual([0xaa, 0x50, 0xe9, 0xff, 0xff]);
    const s = await run("flash", "show", f("flash.bin"), "--json");
    expect(s.code).toBe(0);
    const j = JSON.parse(s.out);
    expect(j.partitions.map((p: { name: string }) => p.name)).toEqual(["nvs", "otadata", "app0", "app1"]);
    expect(j.otadata.map((o: { seq: number }) => o.seq)).toEqual([0xffffffff, 0xffffffff]);
    expect(j.bootloader).toEqual({ slot: 0, version: "1.0.0", behavior: "healthy" });
    expect(j.slots[0]).toMatchObject({ valid: true, appDesc: { version: "1.0.0" } });
    expect(j.slots[1]).toMatchObject({ erased: true, valid: false });
    // show simulates the boot on a copy: the file is unchanged
    expect(readFileSync(f("flash.bin")).equals(raw)).toBe(true);
    const text = await run("flash", "show", f("flash.bin"));
    expect(text.out).toMatch(/bootloader: boots ota_0 \(1\.0\.0, healthy\)/);
    // the state after a real boot shows up
    const chip = SimChip.load(f("flash.bin"));
    boot(chip);
    chip.save(f("booted.bin"));
    expect(JSON.parse((await run("flash", "show", f("booted.bin"), "--json")).out).otadata[0]).toMatchObject({ seq: 1, state: "VALID", crcValid: true, valid: true });
  });
  it("refuses what is not a flash image, and a bad partition CSV with its line", async () => {
    expect((await run("flash", "show", f("v1.bin"))).code).toBe(1);
    writeFileSync(f("bad.csv"), "nvs,data,nvs,0x9000,0x5000\napp0,app,ota_0,0x11000,1M\n");
    const r = await run("flash", "create", "-o", f("x.bin"), "--table", f("bad.csv"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/PTABLE_ALIGN.*line 2/);
    expect((await run("flash", "create")).code).toBe(2);
  });
});
