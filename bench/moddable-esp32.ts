/*
 * The ESP32 build of manifest.json as far as a machine without ESP-IDF can take it, with
 * Moddable's own tools: `mcconfig -p esp32` resolves the manifest and writes its makefile; that
 * makefile's per-module targets run mcconfig's tsc (against the SDK's typings) and xsc on every
 * module; xsl then links them into mc.xs.c as it does for the chip. Only the C (ESP-IDF, xtensa
 * gcc) is left out. Used by test/device/esp32-build.test.ts (fails on any error before the IDF)
 * and by the bench's code-size figure (what xsl lays out for the agent).
 *
 * ESP-IDF is faked in two places only: $IDF_PATH is an empty git repository tagged v6.0 (the
 * makefile reads the version with `git describe`), and the sdkconfig.h that idf.py would
 * generate is an empty file (mc.xs.c depends on it; xsl does not read it).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tscOnce } from "../host-sim/engines/moddable/tsc-once";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The Moddable SDK version src/ is written against; mcconfig 8.2.3 expects ESP-IDF v6.0. */
export const EXPECTED_IDF = "v6.0";

export interface ModdableTree {
  root: string;
  /** build/bin/lin/release: mcconfig, xsc, xsl, xsid... */
  bin: string;
}

/**
 * $MODDABLE when its host tools are built, else out/moddable (the SDK copy `.ci/run` builds
 * from ../shared/moddable). A reason instead when neither has mcconfig, xsc and xsl.
 */
export function findModdable(env: NodeJS.ProcessEnv = process.env): ModdableTree | { reason: string } {
  const candidates = [env.MODDABLE, join(REPO, "out", "moddable")].filter((p): p is string => !!p);
  for (const root of candidates) {
    const bin = join(root, "build", "bin", "lin", "release");
    if (["mcconfig", "xsc", "xsl", "xsid"].every((t) => existsSync(join(bin, t)))) return { root, bin };
  }
  return { reason: `no Moddable host tools built (looked for mcconfig, xsc, xsl, xsid in build/bin/lin/release of ${candidates.join(" and ")}); build them as .ci/run does` };
}

export interface Esp32BuildOptions {
  moddable: ModdableTree;
  /** Output directory (mcconfig -o); emptied first. Default out/esp32-build. */
  outDir?: string;
  /** Directory of the app's manifest.json (default examples/device, the reference app that includes the component). */
  manifestDir?: string;
  /** Platform argument (default "esp32"). */
  platform?: string;
  /** make -j (default 2). */
  jobs?: number;
  /** Only resolve the manifest and write the makefile (mcconfig), no module is compiled. */
  mcconfigOnly?: boolean;
  /** Build only the .xsb targets whose module path matches (default all); the link is then skipped. */
  only?: RegExp;
  /**
   * Compile all TypeScript modules in ONE run of the same tsc with the same generated options
   * (tsconfig-base.json), and place each module's output where its own makefile rule would put
   * it, instead of the makefile's one `tsc -p` per module (each re-checking every module it
   * imports: 44 runs, minutes on a loaded machine). The emitted JavaScript is the same; xsc and
   * xsl still run from the makefile. Default true.
   */
  tscOnce?: boolean;
}

export interface ScriptSize {
  /** Module specifier as xsl knows it ("modules/agent", "http"). */
  name: string;
  /** Bytes of bytecode xsl keeps for it in mc.xs.c (0 for a module whose code ran at link time: preloaded). */
  code: number;
  host: boolean;
}

export interface Esp32Build {
  ok: boolean;
  /** The step that failed: "mcconfig", "modules" (tsc/xsc), "link" (xsl); undefined when ok. */
  failed?: "mcconfig" | "modules" | "link";
  /** Output of the failed step, or of the last one. */
  log: string;
  tmpDir: string;
  /** .xsb files the makefile built. */
  xsb: string[];
  /** From xsl: "### 987 instances, 1993 keys, ...". */
  linked?: { instances: number; keys: number };
  xslWarnings: string[];
  scripts: ScriptSize[];
  /** What preloading the agent (manifest.json "preload") puts in flash: see `preloadCost`. */
  preload?: PreloadCost;
  seconds: { mcconfig: number; modules: number; link: number };
}

/** Parts of an mc.xs.c that preloading changes. */
export interface LinkLayout {
  /** Bytes of bytecode xsl wrote inline in the ROM heap (the functions of the modules it preloaded, their module bodies dropped). */
  inlineCode: number;
  /** Slots of the ROM heap (mxHeapCount): objects made at link time, 16 bytes each on the chip. */
  heapSlots: number;
  /** ROM objects that are not frozen (mxAliasCount): each costs a RAM pointer at boot, and a RAM copy when written. */
  aliases: number;
}

/**
 * The agent's share of the ROM layout: the link of manifest.json minus a link of the same build
 * with only the SDK's preloads (the agent's entries dropped from the makefile's PRELOADS).
 */
export interface PreloadCost {
  /** The agent's modules xsl preloads (its -p arguments). */
  modules: string[];
  inlineCode: number;
  heapSlots: number;
  aliases: number;
}

/** An empty git repository tagged `tag`: what the generated makefile's `git describe` reads. */
export function idfStub(dir: string, tag = EXPECTED_IDF): string {
  if (existsSync(join(dir, ".git"))) {
    const t = spawnSync("git", ["-C", dir, "describe", "--tags", "--always", "--abbrev=0"], { encoding: "utf8" });
    if (t.stdout.trim() === tag) return dir;
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, "-c", "user.email=xsota@localhost", "-c", "user.name=xsota", ...args], { stdio: "pipe" });
  git("init", "-q");
  git("commit", "-q", "--allow-empty", "-m", "ESP-IDF stand-in for mcconfig's version check (no IDF here)");
  git("tag", tag);
  return dir;
}

function toolEnv(moddable: ModdableTree, idfPath: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MODDABLE: moddable.root,
    IDF_PATH: idfPath,
    // mcconfig's tsc is the first on PATH: the project's (TypeScript 6, which knows es2025).
    PATH: [moddable.bin, join(REPO, "node_modules", ".bin"), process.env.PATH ?? ""].join(":"),
  };
}

const since = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

/** The app's name as mcconfig takes it: build.NAME of its manifest, else the manifest's folder name. */
export function appName(manifestDir: string): string {
  const m = JSON.parse(readFileSync(join(manifestDir, "manifest.json"), "utf8")) as { build?: { NAME?: string } };
  return m.build?.NAME ?? manifestDir.split("/").filter(Boolean).pop()!;
}

/** mcconfig for esp32 (makefile only), then the makefile's module targets, then xsl. */
export async function buildEsp32(o: Esp32BuildOptions): Promise<Esp32Build> {
  const outDir = o.outDir ?? join(REPO, "out", "esp32-build");
  const manifestDir = o.manifestDir ?? join(REPO, "examples", "device");
  const platform = o.platform ?? "esp32";
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const env = toolEnv(o.moddable, idfStub(join(outDir, "idf-stub")));
  // mcconfig's temporary directory is named after the app (build.NAME, else the manifest's folder)
  const name = appName(manifestDir);
  // (Moddable's simulator builds, -p lin / mac, put theirs under an "mc" folder)
  const tmpDir = join(outDir, "tmp", ...platform.split("/"), ...(platform === "lin" || platform === "mac" ? ["mc"] : []), "release", name);
  const result: Esp32Build = { ok: false, log: "", tmpDir, xsb: [], xslWarnings: [], scripts: [], seconds: { mcconfig: 0, modules: 0, link: 0 } };
  // asynchronous, so a test runner's worker stays responsive through a minute of tsc
  const run = (cmd: string, args: string[], cwd: string) =>
    new Promise<{ status: number | null; out: string }>((done) => {
      const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.on("error", (e) => done({ status: null, out: out + String(e) }));
      child.on("close", (status) => done({ status, out }));
    });

  // 1. mcconfig without -m: resolve the manifest, its includes and platform blocks, write the makefile.
  let t0 = performance.now();
  const mc = await run(join(o.moddable.bin, "mcconfig"), ["-p", platform, "-o", outDir, join(manifestDir, "manifest.json")], manifestDir);
  result.seconds.mcconfig = since(t0);
  result.log = mc.out;
  const makefile = join(tmpDir, "makefile");
  if (mc.status !== 0 || /### Error/.test(mc.out) || !existsSync(makefile)) return { ...result, failed: "mcconfig" };
  if (o.mcconfigOnly) return { ...result, ok: true };

  // 2. every .xsb the makefile lists (TypeScript: tsc then xsc; JavaScript: xsc), as `make` would before the C.
  const printer = join(outDir, "print-modules.mk");
  writeFileSync(printer, "print-xsb:\n\t@echo $(filter %.xsb,$(MODULES))\n");
  const list = await run("make", ["-f", makefile, "-f", printer, "print-xsb"], tmpDir);
  result.xsb = list.out.trim().split(/\s+/).filter((s) => s.endsWith(".xsb"));
  const targets = o.only ? result.xsb.filter((x) => o.only!.test(x)) : result.xsb;
  t0 = performance.now();
  if (o.tscOnce ?? true) {
    const once = await tscOnce(join(tmpDir, "modules"), join(tmpDir, "tsc", "~all"), o.only, run);
    if (once.status !== 0) return { ...result, seconds: { ...result.seconds, modules: since(t0) }, log: once.out + "\n# typescript compile failure", failed: "modules" };
  }
  const mods = targets.length ? await run("make", ["-f", makefile, `-j${o.jobs ?? 2}`, ...targets], tmpDir) : { status: 1, out: list.out };
  result.seconds.modules = since(t0);
  result.log = mods.out;
  if (mods.status !== 0 || /typescript compile failure|error TS\d+/.test(mods.out)) return { ...result, failed: "modules" };
  if (o.only) return { ...result, ok: true };

  // 3. xsl links every module (and the host functions' .xsi) into mc.xs.c; it needs the IDF's sdkconfig.h only as a make dependency.
  const sdkconfigH = join(tmpDir, "xsProj-" + (env.ESP32_SUBCLASS ?? "esp32"), "build", "config", "sdkconfig.h");
  mkdirSync(dirname(sdkconfigH), { recursive: true });
  writeFileSync(sdkconfigH, "/* empty: generated by idf.py on a machine with ESP-IDF */\n");
  t0 = performance.now();
  // 3a. the baseline: the same link with only the SDK's preloads, to tell the agent's share of the ROM heap
  writeFileSync(printer, "print-xsb:\n\t@echo $(filter %.xsb,$(MODULES))\nprint-preloads:\n\t@echo $(PRELOADS)\n");
  const preloads = (await run("make", ["-f", makefile, "-f", printer, "print-preloads"], tmpDir)).out.trim().split(/\s+/);
  const agentPreloads: string[] = [];
  const sdkPreloads: string[] = [];
  for (let i = 0; i < preloads.length; i++) {
    if (preloads[i] !== "-p" || !preloads[i + 1]) continue;
    const file = preloads[++i]!;
    (isAgentModule(file.replace(/\.xsb$/, "")) ? agentPreloads : sdkPreloads).push(file);
  }
  let baseline: LinkLayout | undefined;
  if (agentPreloads.length) {
    const base = await run("make", ["-f", makefile, join(tmpDir, "mc.xs.c"), `PRELOADS=${sdkPreloads.map((f) => `-p ${f}`).join(" ")}`], tmpDir);
    if (base.status !== 0 || !existsSync(join(tmpDir, "mc.xs.c"))) return { ...result, log: base.out, failed: "link" };
    baseline = linkLayout(readFileSync(join(tmpDir, "mc.xs.c"), "utf8"));
    rmSync(join(tmpDir, "mc.xs.c"));
  }
  const link = await run("make", ["-f", makefile, join(tmpDir, "mc.xs.c")], tmpDir);
  result.seconds.link = since(t0);
  result.log = link.out;
  const counts = /### (\d+) instances, (\d+) keys/.exec(link.out);
  if (link.status !== 0 || !counts || !existsSync(join(tmpDir, "mc.xs.c"))) return { ...result, failed: "link" };
  result.linked = { instances: Number(counts[1]), keys: Number(counts[2]) };
  result.xslWarnings = link.out.split("\n").filter((l) => l.startsWith("### warning"));
  const mcxs = readFileSync(join(tmpDir, "mc.xs.c"), "utf8");
  result.scripts = linkedScripts(mcxs);
  if (baseline) {
    const full = linkLayout(mcxs);
    result.preload = {
      modules: agentPreloads.map((f) => f.replace(/\.xsb$/, "")),
      inlineCode: full.inlineCode - baseline.inlineCode,
      heapSlots: full.heapSlots - baseline.heapSlots,
      aliases: full.aliases - baseline.aliases,
    };
  }
  result.ok = true;
  return result;
}

/** gxScripts of an mc.xs.c: each module's name, the size of the bytecode kept for it, whether it has host functions. */
export function linkedScripts(mcxs: string): ScriptSize[] {
  const start = mcxs.indexOf("static const txScript gxScripts[mxScriptsCount] = {");
  if (start < 0) return [];
  const body = mcxs.slice(start, mcxs.indexOf("};", start));
  const out: ScriptSize[] = [];
  for (const m of body.matchAll(/\{ (xsHostModule\d+|NULL), NULL, 0, (?:\(txS1\*\)gxCode\d+|NULL), (\d+), NULL, 0, "([^"]+)"/g))
    out.push({ name: m[3]!, code: Number(m[2]), host: m[1] !== "NULL" });
  return out;
}

/** The agent's own modules, as xsl names them: the component's specifiers (setup/xsota is src/component/setup.ts). */
export const isAgentModule = (name: string) => name === "xsota" || name.startsWith("xsota/") || name === "setup/xsota";

/** Inline bytecode, ROM heap slots and aliases of an mc.xs.c. */
export function linkLayout(mcxs: string): LinkLayout {
  let inlineCode = 0;
  // preloaded functions: { .code = { (txByte*)"\x0c\x00...", closures } }, one byte per \xNN
  for (const m of mcxs.matchAll(/\.code = \{ \(txByte\*\)"((?:\\x[0-9a-f]{2})*)"/g)) inlineCode += m[1]!.length / 4;
  const count = (name: string) => Number(new RegExp(`^#define ${name} (\\d+)$`, "m").exec(mcxs)?.[1] ?? 0);
  return { inlineCode, heapSlots: count("mxHeapCount"), aliases: count("mxAliasCount") };
}

/** Sizes of the .xsb files under a directory (recursive), by path relative to it. */
export function xsbSizes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string, prefix: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${e}/`);
      else if (e.endsWith(".xsb")) out.set(prefix + e.slice(0, -4), statSync(p).size);
    }
  };
  walk(dir, "");
  return out;
}
