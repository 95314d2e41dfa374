/* xsota delta as a user runs it: a child process, exit statuses, --json, coded errors. */
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const V = join(ROOT, "test/delta/vectors");
const tmp = mkdtempSync(join(tmpdir(), "xsota-delta-cli-"));

function xsota(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin/xsota.js"), "delta", ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function xsotaAsync(...args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, "bin/xsota.js"), "delta", ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (status) => resolve({ status, stderr }));
  });
}

describe("xsota delta", () => {
  it("create -> info -> apply gives back the new image, with the share and the time at 26 KB/s", () => {
    const patch = join(tmp, "p.patch");
    const c = xsota("create", "--from", join(V, "app-1.0.0.bin"), "--to", join(V, "app-1.1.0.bin"), "--out", patch, "--json");
    expect(c.status, c.stderr).toBe(0);
    const report = JSON.parse(c.stdout);
    expect(report.patchBytes).toBe(readFileSync(patch).length);
    expect(report.sharePercent).toBeGreaterThan(0);
    expect(report.sharePercent).toBeLessThan(10);
    expect(report.fullSeconds).toBeGreaterThan(report.deltaSeconds);
    const i = xsota("info", patch, "--json");
    expect(i.status).toBe(0);
    expect(JSON.parse(i.stdout)).toMatchObject({ compression: "heatshrink", outputBytes: 30352, espHeader: false });
    const out = join(tmp, "new.bin");
    const a = xsota("apply", "--from", join(V, "app-1.0.0.bin"), "--patch", patch, "--out", out);
    expect(a.status, a.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(join(V, "app-1.1.0.bin")))).toBe(0);
    expect(xsota("--help").stdout).toMatch(/xsota delta create --from .* --compression none/);
  });

  it("bad usage is status 2, a missing file 3, a bad patch 1 with its DELTA code, and no stack", async () => {
    const from = join(V, "app-1.0.0.bin");
    const cases: [string[], number, RegExp][] = [
      [[], 2, /USAGE: .*missing subcommand/],
      [["create", "--to", from, "--out", join(tmp, "x")], 2, /USAGE: .*missing --from/],
      [["create", "--from", from, "--to", from, "--compression", "lzma", "--out", join(tmp, "x")], 2, /USAGE: .*heatshrink or none/],
      [["create", "--from", join(tmp, "nope.bin"), "--to", from, "--out", join(tmp, "x")], 3, /FILE_NOT_FOUND/],
      [["apply", "--from", from, "--patch", from, "--out", join(tmp, "x")], 1, /DELTA_FORMAT/],
      [["apply", "--from", from, "--patch", join(V, "detools-1.0.0-1.1.0-heatshrink.patch"), "--max-output", "16K", "--out", join(tmp, "x")], 1, /DELTA_OVERRUN/],
    ];
    const cut = join(tmp, "cut.patch");
    writeFileSync(cut, readFileSync(join(V, "detools-1.0.0-1.1.0-heatshrink.patch")).subarray(0, 500));
    cases.push([["apply", "--from", from, "--patch", cut, "--out", join(tmp, "x")], 1, /DELTA_TRUNCATED/]);
    const runs = await Promise.all(cases.map(([args]) => xsotaAsync(...args)));
    for (const [k, [args, status, stderr]] of cases.entries()) {
      const r = runs[k]!;
      expect(r.status, args.join(" ")).toBe(status);
      expect(r.stderr).toMatch(stderr);
      expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    }
  });
});
