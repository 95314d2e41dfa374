/*
 * The bench's deterministic goals as tests (its timed figures are not tests): one erase per
 * sector of the image and no rewrite, otadata writes equal to ESP-IDF's, resume within one chunk
 * per drop, the endurance invariants over a short seeded run; plus a smoke run of `xsota bench
 * --quick` through the real command line and its JSON report.
 */
import { describe, it, expect, beforeAll } from "vitest";
import { runNode } from "../child";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBench, benchRows, type BenchReport } from "../../bench/run";
import { FlashRecorder } from "../../bench/probe";
import { IDF_OTADATA } from "../../bench/wear";
import { SimChip } from "../../host-sim/chip/chip";

const ROOT = join(import.meta.dirname, "..", "..");
let report: BenchReport;

beforeAll(async () => {
  report = await runBench({ only: ["wear", "resume", "endurance"], quick: true, cycles: 40 });
}, 120_000);

describe("flash wear of one update", () => {
  it("erases each sector of the image exactly once and writes each byte once", () => {
    const w = report.wear!;
    expect(w.final).toBe("committed");
    expect(w.imageSectors).toBe(Math.ceil(w.imageBytes / 4096));
    expect(w.slot.erases).toBe(w.imageSectors);
    expect(w.slot.sectorsErased).toBe(w.imageSectors);
    expect(w.slot.sectorsErasedTwice).toBe(0);
    expect(w.slot.rewriteBytes).toBe(0);
    expect(w.slot.bytesWritten).toBe(w.imageBytes);
  });

  it("writes otadata as often as ESP-IDF needs and no more (app: switch + mark valid; bootloader: NEW -> PENDING_VERIFY)", () => {
    expect(report.wear!.otadata).toEqual(IDF_OTADATA);
  });

  it("counts the journal's NVS writes", () => {
    const w = report.wear!;
    expect(w.setsByDomain["xsota/journal"]).toBeGreaterThan(0);
    expect(w.nvs.writes).toBeGreaterThanOrEqual(Object.values(w.setsByDomain).reduce((a, b) => a + b, 0));
  });
});

describe("FlashRecorder", () => {
  it("sees a second erase of a sector and bytes written twice into it", () => {
    const chip = SimChip.create({});
    const rec = new FlashRecorder(chip);
    const app1 = chip.partition("app1");
    app1.eraseBlock(0);
    app1.write(0, new Uint8Array(4096).fill(0xa5));
    app1.write(0, new Uint8Array(16).fill(0x05));
    app1.eraseBlock(0);
    rec.stop();
    const w = rec.wear("app1");
    expect(w.erases).toBe(2);
    expect(w.sectorsErasedTwice).toBe(1);
    expect(w.rewriteBytes).toBe(16);
    app1.eraseBlock(1);
    expect(rec.wear("app1").erases).toBe(2); // stopped: no longer recording
  });
});

describe("resume after a link drop", () => {
  it("transfers the image plus at most one 4 KB chunk per drop, at 10%, 50%, 90% and all three", () => {
    const cases = report.resume!;
    expect(cases.map((c) => c.cuts)).toEqual([[0.1], [0.5], [0.9], [0.1, 0.5, 0.9]]);
    for (const c of cases) {
      expect(c.final, JSON.stringify(c.downloadLog)).toBe("committed");
      expect(c.requests).toBe(c.cuts.length + 1);
      expect(c.bytesSent).toBeGreaterThanOrEqual(c.imageBytes);
      expect(c.extra, JSON.stringify(c.requestsLog)).toBeLessThanOrEqual(c.cuts.length * 4096);
    }
  });
});

describe("endurance (short seeded run)", () => {
  it("ends on a valid firmware with the floor never lowered, no event lost, NVS not growing", () => {
    const e = report.endurance!;
    expect(e.cycles).toBe(40);
    expect(e.faults.powerCutsFired + e.faults.linkDrops + e.faults.badReleases).toBeGreaterThan(5);
    expect(e.bricked).toBe(false);
    expect(e.finalVersion).toMatch(/^1\.\d+\.0$/);
    expect(e.floor.wentDown).toBe(0);
    expect(e.events.numbered).toBeGreaterThan(40);
    expect(e.events.lost).toBe(0);
    expect(e.events.outboxFull).toBe(0);
    expect(e.ok).toEqual({ valid: true, floor: true, events: true, nvs: true });
  });
});

describe("table", () => {
  it("has a row per deterministic goal, all met", () => {
    const rows = benchRows(report);
    const goals = rows.filter((r) => r.status !== "");
    expect(goals.length).toBe(3 + 4 + 4);
    expect(goals.filter((r) => r.status === "MISSED")).toEqual([]);
  });
});

describe("xsota bench (command line)", () => {
  it("runs --quick, prints the table and writes the JSON report", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-bench-"));
    try {
      const out = join(dir, "r.json");
      const r = await run(["bin/xsota.js", "bench", "--quick", "--only", "wear", "--out", out], 120_000);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/\| figure +\| value +\| goal +\| status \|/);
      expect(r.stdout).toMatch(/otadata erase\+write per update/);
      const j = JSON.parse(readFileSync(out, "utf8"));
      expect(j.quick).toBe(true);
      expect(typeof j.date).toBe("string");
      expect(j.machine.cpus).toBeGreaterThan(0);
      expect(j.seconds.wear).toBeGreaterThan(0);
      expect(j.wear.slot.erasesPerImageSector).toBe(1);
      expect(j.throughput).toBeUndefined();
      expect(Array.isArray(j.table) && j.table.length > 0).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it("refuses an unknown part with a usage error", async () => {
    const r = await run(["bin/xsota.js", "bench", "--only", "speed"], 60_000);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/USAGE/);
  }, 90_000);
});

const run = (args: string[], timeout: number) => runNode(args, { cwd: ROOT, timeout });
