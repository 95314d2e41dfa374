/*
 * `xsota component`: the component compiled to JavaScript + .d.ts (backend/release/component.ts).
 * Checked here without Moddable's tools: every module the manifests map has its .js and .d.ts, the
 * command refuses to replace a folder it did not write, and a type error in the device side writes
 * nothing. test/device/esp32-build.test.ts builds apps with the result through mcconfig, xsc and xsl.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/xsota.js");

interface Run { status: number | null; stdout: string; stderr: string }

/** A child process (tsc takes seconds: a synchronous run would stall the test worker). */
function node(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("close", (status) => {
      clearTimeout(kill);
      done({ status, stdout, stderr });
    });
  });
}
const xsota = (...args: string[]) => node([BIN, ...args]);

/** Every source path a manifest maps on esp32, resolved against its folder (wildcards expanded). */
function mappedSources(root: string, manifest: string): string[] {
  const m = JSON.parse(readFileSync(join(root, manifest), "utf8")) as { platforms: { esp32: { modules: Record<string, string | string[]> } } };
  const dir = join(root, manifest, "..");
  const out: string[] = [];
  for (const [key, value] of Object.entries(m.platforms.esp32.modules)) {
    if (key === "~" || key === "*") continue;
    for (const source of ([] as string[]).concat(value)) {
      const path = join(dir, source);
      if (path.endsWith("/*")) {
        const folder = path.slice(0, -2);
        for (const f of readdirSync(folder)) if (/\.(ts|js)$/.test(f) && !f.endsWith(".d.ts")) out.push(join(folder, f.replace(/\.(ts|js)$/, "")));
      } else out.push(path);
    }
  }
  return out;
}

describe("xsota component", () => {
  const tmp = mkdtempSync(join(tmpdir(), "xsota-component-"));
  const out = join(tmp, "xsota-js");
  let run: Run;
  beforeAll(async () => {
    run = await xsota("component", "--out", out, "--json");
  }, 120_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("writes a .js and a .d.ts for every module the manifests map, and no TypeScript source", () => {
    expect(run.status, run.stderr).toBe(0);
    const built = JSON.parse(run.stdout) as { modules: string[]; manifests: string[] };
    expect(built.manifests).toContain("features/delta/manifest.json");
    let checked = 0;
    for (const manifest of built.manifests) {
      expect(readFileSync(join(out, manifest), "utf8")).toBe(readFileSync(join(ROOT, manifest), "utf8"));
      for (const source of mappedSources(out, manifest)) {
        expect(existsSync(`${source}.js`), `${source}.js`).toBe(true);
        // the native's own JavaScript has hand-written typings; the rest come from tsc
        expect(existsSync(`${source}.d.ts`), `${source}.d.ts`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(60);
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    expect(walk(out).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    // the public API's typings name its options
    expect(readFileSync(join(out, "src", "component", "xsota.d.ts"), "utf8")).toMatch(/export interface OTAOptions[\s\S]*rebootWhen\?: \(\) => boolean/);
    // the typings of modules that use hand-declared SDK modules keep the reference to them
    expect(readFileSync(join(out, "src", "mqtt.d.ts"), "utf8")).toMatch(/^\/\/\/ <reference path="\.\/types\/moddable\.d\.ts"/);
  });

  it("replaces a folder it wrote, refuses one it did not (USAGE, exit 2) unless --force", async () => {
    expect((await xsota("component", "--out", out)).status).toBe(0);
    const mine = join(tmp, "mine");
    mkdirSync(mine);
    writeFileSync(join(mine, "notes.txt"), "keep me");
    const refused = await xsota("component", "--out", mine);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/USAGE: .*not empty and not written by xsota component/);
    expect(readFileSync(join(mine, "notes.txt"), "utf8")).toBe("keep me");
    expect((await xsota("component")).stderr).toMatch(/USAGE: .*missing --out/);
    const forced = await xsota("component", "--out", mine, "--force");
    expect(forced.status, forced.stderr).toBe(0);
    expect(existsSync(join(mine, "notes.txt"))).toBe(false);
  }, 240_000);

  it("stops at a type error in the device side (COMPONENT_BUILD, the file named) and leaves the folder as it was", async () => {
    const repo = join(tmp, "repo");
    for (const p of ["manifest.json", "package.json", "tsconfig.base.json", "tsconfig.device.json", "modules", "src", "features"]) cpSync(join(ROOT, p), join(repo, p), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(repo, "node_modules"));
    writeFileSync(join(repo, "src", "url.ts"), readFileSync(join(repo, "src", "url.ts"), "utf8") + "\nexport const nodeOnly: number = process.pid;\n");
    const before = readdirSync(out).sort();
    const script = [
      `import { buildComponent } from ${JSON.stringify(join(ROOT, "backend/release/component.ts"))};`,
      `try { buildComponent(${JSON.stringify(repo)}, ${JSON.stringify(out)}); console.log("built"); }`,
      "catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }",
    ].join("\n");
    const r = await node(["--import", "tsx", "--input-type=module", "-e", script]);
    expect(r.status, r.stderr).toBe(0);
    const error = JSON.parse(r.stdout) as { code: string; message: string };
    expect(error.code).toBe("COMPONENT_BUILD");
    expect(error.message).toMatch(/src\/url\.ts\(\d+,\d+\): error TS\d+: Cannot find name 'process'/);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(existsSync(`${out}.partial`)).toBe(false);
  }, 120_000);
});
