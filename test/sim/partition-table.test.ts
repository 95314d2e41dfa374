import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { parsePartitionCsv, parsePartitionBinary, loadDefaultTable } from "../../host-sim/chip/partition-table";
import { OtaError } from "../../modules/errors";

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const err = (fn: () => unknown): string => {
  try { fn(); } catch (e) { return e instanceof OtaError ? `${e.code} ${e.detail}` : String(e); }
  return "no error";
};

// Produced by ESP-IDF's own gen_esp32part.py (master, 2026-07) from these inputs, once, by hand.
const IDF_DEFAULT_MD5 = "f30bb18a370166ebae76c0a135bb477a"; // partitions.csv, 4 MB
const IDF_T2_MD5 = "5f989243287e7b547660e7c866144662";
const T2 = `nvs, data, nvs, , 0x6000,
otadata, data, ota, , 8K,
phy_init, data, phy, , 4K, encrypted
factory, app, factory, , 1M,
ota_0, app, ota_0, , 1M,
ota_1, app, 0x11, , 1M,
storage, data, spiffs, , -0x3F0000, readonly:encrypted
`;

describe("binary table, byte for byte with gen_esp32part.py", () => {
  it("the project's partitions.csv", () => {
    const t = loadDefaultTable();
    expect(t.entries.map((e) => [e.name, e.offset, e.size])).toEqual([
      ["nvs", 0x9000, 20 * 1024], ["otadata", 0xe000, 0x2000], ["app0", 0x10000, 0x180000], ["app1", 0x190000, 0x180000],
    ]);
    const b = t.toBinary();
    expect(b.length).toBe(0xc00);
    expect(md5(b)).toBe(IDF_DEFAULT_MD5);
    // row 0 by hand: AA 50, data(1), nvs(2), offset 0x9000, size 0x5000, "nvs", flags 0
    expect([...b.subarray(0, 16)]).toEqual([0xaa, 0x50, 0x01, 0x02, 0x00, 0x90, 0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x6e, 0x76, 0x73, 0x00]);
    expect([...b.subarray(0x40, 0x50)]).toEqual([0xaa, 0x50, 0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x18, 0x00, 0x61, 0x70, 0x70, 0x30]);
    expect([...b.subarray(0x80, 0x90)]).toEqual([0xeb, 0xeb, ...new Array(14).fill(0xff)]);
    expect(Buffer.from(b.subarray(0x90, 0xa0)).toString("hex")).toBe(md5(b.subarray(0, 0x80)));
    expect(b.subarray(0xa0).every((x) => x === 0xff)).toBe(true);
  });
  it("auto offsets, flags, numeric subtypes and a negative size", () => {
    const t = parsePartitionCsv(T2);
    expect(md5(t.toBinary())).toBe(IDF_T2_MD5);
    expect(t.find("factory")!.offset).toBe(0x20000); // app aligned up to 64 KB after phy_init at 0x11000
    expect(t.find("storage")).toMatchObject({ offset: 0x320000, size: 0x3f0000 - 0x320000, flags: 3 });
    expect(t.appSlots().map((e) => e.name)).toEqual(["ota_0", "ota_1"]);
  });
  it("round-trips through the binary parser, and refuses a corrupt binary", () => {
    const b = parsePartitionCsv(T2).toBinary();
    const back = parsePartitionBinary(b);
    expect(back.entries.map(({ line: _l, ...e }) => e)).toEqual(parsePartitionCsv(T2).entries.map(({ line: _l, ...e }) => e));
    const bad = b.slice(); bad[8] ^= 1;
    expect(err(() => parsePartitionBinary(bad))).toMatch(/^PTABLE_BINARY MD5/);
    const magic = b.slice(); magic[32] = 0;
    expect(err(() => parsePartitionBinary(magic))).toMatch(/^PTABLE_BINARY/);
    const noEnd = new Uint8Array(0xc00);
    for (let o = 0; o < 0xc00; o += 32) noEnd.set(b.subarray(0, 32), o);
    expect(err(() => parsePartitionBinary(noEnd))).toMatch(/PTABLE_BINARY|MD5/);
  });
});

describe("CSV syntax as ESP-IDF reads it", () => {
  it("hex, decimal, K and M suffixes, comments, blank lines, missing flags column", () => {
    const t = parsePartitionCsv("# comment\n\n nvs , data , nvs , 36864 , 0x5000\notadata,data,ota,0xe000,8k\napp0,app,ota_0,,1M\n");
    expect(t.entries.map((e) => [e.offset, e.size])).toEqual([[0x9000, 0x5000], [0xe000, 0x2000], [0x10000, 0x100000]]);
  });
  it("refuses bad tables with the CSV line number", () => {
    const cases: [string, RegExp][] = [
      ["nvs,data,nvs,0x9000,0x5000\napp0,app,ota_0,0x11000,1M\n", /^PTABLE_ALIGN line 2:/],
      ["nvs,data,nvs,0x9000,0x5000\nx,data,nvs,0xA000,0x5000\n", /^PTABLE_OVERLAP line 2:/],
      ["nvs,data,nvs,0x8000,0x5000\n", /^PTABLE_OVERLAP line 1:/],
      ["nvs,data,nvs,0x9000,0x5000\nnvs,data,spiffs,,0x5000\n", /^PTABLE_DUPLICATE line 2:/],
      ["nvs,data,nvs,0x9000,0x5000\nfoo,blob,nvs,,4K\n", /^PTABLE_TYPE line 2:/],
      ["nvs,data,nvs,0x9000,0x5000\n\nfoo,app,ota_16,,64K\n", /^PTABLE_TYPE line 3:/],
      ["nvs,data,nvs,0x9000,0x5000\napp0,app,ota_0,,4M\n", /^PTABLE_TOO_LARGE line 2:/],
      ["nvs,data,nvs,0x9000,\n", /^PTABLE_SYNTAX line 1:/],
      ["nvs,data,nvs,0x9000,12Q\n", /^PTABLE_SYNTAX line 1:/],
      ["nvs,data,nvs,0x9000,0x5000,shiny\n", /^PTABLE_SYNTAX line 1:/],
      ["app0,app,,0x10000,64K\n", /^PTABLE_SYNTAX line 1:/],
      ["otadata,data,ota,0x9000,4K\n", /^PTABLE_ALIGN line 1:.*0x2000/],
      ["nvs,data,nvs,0x9000,0x2000\n", /^PTABLE_ALIGN line 1:.*0x3000/],
      ["a_name_longer_than_16,data,nvs,0x9000,0x5000\n", /^PTABLE_SYNTAX line 1:/],
      ["o1,data,ota,0x9000,8K\no2,data,ota,,8K\n", /^PTABLE_DUPLICATE line 2:/],
    ];
    for (const [csv, re] of cases) expect(err(() => parsePartitionCsv(csv))).toMatch(re);
  });
  it("a UTF-8 BOM and CRLF line ends are ignored, as in IDF", () => {
    expect(parsePartitionCsv("\ufeffnvs,data,nvs,0x9000,0x5000\r\napp0,app,ota_0,,64K\r\n").entries.map((e) => e.name)).toEqual(["nvs", "app0"]);
  });
  it("a small readonly nvs is allowed, as in IDF", () => {
    expect(parsePartitionCsv("nvs,data,nvs,0x9000,0x1000,readonly\n").entries[0]!.flags).toBe(2);
  });
  it("the flash size bounds the table", () => {
    expect(err(() => loadDefaultTable(2 * 1024 * 1024))).toMatch(/^PTABLE_TOO_LARGE line \d+:/);
  });
});
