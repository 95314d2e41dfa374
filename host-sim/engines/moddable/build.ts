/*
 * The Moddable side of the build, from Node: find (or build) the Moddable host tools, then
 * build moddable-host/ with `mcconfig -m -p x-cli-lin` into out/moddable-host. Both steps reuse
 * what is already there. Where the tree comes from, in order:
 *   1. $MODDABLE, when its tools are built (build/bin/lin/release/mcconfig);
 *   2. out/moddable of this checkout, built by an earlier run;
 *   3. ../shared/moddable (the SDK source, read-only): copied to out/moddable and built there with
 *      the SDK's own makefiles (xsc, xsid, xsl, serial2xsbug, tools), needing gcc, make,
 *      pkg-config and libglib2.0-dev; about 2 minutes on 2 cores, once.
 * `npx tsx host-sim/engines/moddable/build.ts` runs both and prints the program's path.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tscOnce, tscOncePlan, tscOncePlace } from "./tsc-once";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const TOOLS = "build/bin/lin/release";
export const PROGRAM_DIR = join(REPO, "out", "moddable-host");
export const PROGRAM = join(PROGRAM_DIR, "bin", "lin", "release", "xsota-moddable");

export type Tree = { root: string } | { skip: string };

const hasTools = (root: string) => existsSync(join(root, TOOLS, "mcconfig")) && existsSync(join(root, TOOLS, "xsl"));

/** Why the Linux program cannot be built here, or undefined when it can. */
function missingHostPackages(): string | undefined {
  for (const tool of ["cc", "make", "pkg-config"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (spawnSync("pkg-config", ["--exists", "gio-2.0"]).status !== 0) return "gio-2.0 is missing (apt-get install libglib2.0-dev)";
  return undefined;
}

/** Copy the SDK source to `target` and build its host tools there. Throws with the log's tail on failure. */
export function buildTools(source: string, target: string, log: (line: string) => void = () => {}): void {
  if (!existsSync(join(target, "xs"))) {
    log(`copying ${source} to ${target}`);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(source, target, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", target]); // the source tree is read-only; its copy is built in place
  }
  const env = { ...process.env, MODDABLE: target, XS_DIR: join(target, "xs"), BUILD_DIR: join(target, "build") };
  const cwd = join(target, "build", "makefiles", "lin");
  const steps = [...["xsc", "xsid", "xsl"].map((t) => join(target, "xs", "makefiles", "lin", `${t}.mk`)), "serial2xsbug.mk", "tools.mk"];
  for (const mk of steps) {
    log(`make -f ${mk}`);
    const r = spawnSync("make", [`-j${Math.max(1, availableParallelism())}`, "GOAL=release", "-f", mk], { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`building the Moddable tools failed at ${mk}:\n${(r.stderr || r.stdout || "").slice(-2000)}`);
  }
  if (!hasTools(target)) throw new Error(`no mcconfig in ${join(target, TOOLS)} after the build`);
}

const LOCAL = join(REPO, "out", "moddable");
const SHARED = resolve(REPO, "..", "shared", "moddable");

/** Why no Moddable program can be had here (checked without building anything), or undefined. */
export function whyNoModdable(): string | undefined {
  const missing = missingHostPackages();
  if (missing) return `cannot build for x-cli-lin: ${missing}`;
  const env = process.env.MODDABLE;
  if (env) return hasTools(env) ? undefined : `MODDABLE=${env} has no host tools (${TOOLS}/mcconfig): build them first`;
  if (hasTools(LOCAL) || existsSync(join(SHARED, "xs"))) return undefined;
  return "no Moddable SDK: set MODDABLE to a built tree or put the source at ../shared/moddable";
}

/** The Moddable tree to use, building out/moddable from ../shared/moddable when needed; or why there is none. */
export function moddableTree(log?: (line: string) => void): Tree {
  const why = whyNoModdable();
  if (why) return { skip: why };
  const env = process.env.MODDABLE;
  if (env) return { root: env };
  if (hasTools(LOCAL)) return { root: LOCAL };
  buildTools(SHARED, LOCAL, log);
  return { root: LOCAL };
}

/** Newest modification time under the sources the program is made of. */
function newestSource(): number {
  let newest = 0;
  const walk = (path: string) => {
    const st = statSync(path);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else if (/\.(ts|js|c|h|json)$/.test(path)) newest = Math.max(newest, st.mtimeMs);
  };
  for (const dir of ["moddable-host", "modules", "src"]) walk(join(REPO, dir));
  walk(join(REPO, "host-sim", "engines", "firmware-core.ts"));
  walk(join(REPO, "features"));
  walk(join(REPO, "host-sim", "engines", "engine.ts"));
  return newest;
}

/** The program's path when it is built and newer than every source it is made of (nothing to build), else undefined. */
export function freshProgram(): string | undefined {
  if (whyNoModdable()) return undefined;
  const env = process.env.MODDABLE;
  if (!hasTools(env || LOCAL)) return undefined;
  return existsSync(PROGRAM) && statSync(PROGRAM).mtimeMs >= newestSource() ? PROGRAM : undefined;
}

/** mcconfig's environment: the tree's tools, then the project's tsc, first on PATH. */
const mcconfigEnv = (root: string) => ({ ...process.env, MODDABLE: root, PATH: [join(root, TOOLS), join(REPO, "node_modules", ".bin"), process.env.PATH ?? ""].join(":") });

/**
 * Build (or reuse) the Linux program in out/moddable-host; returns its path. mcconfig compiles
 * the TypeScript with the project's tsc (node_modules/.bin first on PATH). Throws on a failed build.
 */
export function buildProgram(root: string, log: (line: string) => void = () => {}): string {
  if (existsSync(PROGRAM) && statSync(PROGRAM).mtimeMs >= newestSource()) return PROGRAM;
  mkdirSync(PROGRAM_DIR, { recursive: true });
  const env = mcconfigEnv(root);
  // mcconfig writes the makefile, one tsc compiles every TypeScript module (tscOnce), then make: the
  // SDK's x-cli-lin makefile runs with unbounded --jobs, and its one tsc per module meant ~50 tsc
  // processes at once (a load of 90 on this 2-core machine while the suite ran: a fleet simulation
  // went past its timeout); with the modules compiled, make only runs xsc, xsl and cc
  let out = "";
  const step = (cmd: string, args: string[], cwd: string) => {
    log(`${cmd.split("/").pop()} ${args.join(" ")}`);
    const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    out += (r.stdout ?? "") + (r.stderr ?? "");
    return r.status === 0;
  };
  const tmp = join(PROGRAM_DIR, "tmp", "lin", "release", "xsota-moddable");
  let ok = step(join(root, TOOLS, "mcconfig"), ["-p", "x-cli-lin", "-o", PROGRAM_DIR, "moddable-host/manifest.json"], REPO);
  const plan = ok ? tscOncePlan(join(tmp, "modules"), join(tmp, "tsc", "~all")) : undefined;
  if (ok && plan) ok = step("tsc", ["-p", plan.combined], join(tmp, "modules"));
  if (ok && plan) tscOncePlace(plan, join(tmp, "tsc", "~all"));
  if (ok) ok = step("make", ["-f", join(tmp, "makefile")], tmp);
  writeFileSync(join(PROGRAM_DIR, "build.log"), out);
  if (!ok || !existsSync(PROGRAM)) {
    const errors = out.split("\n").filter((l) => !l.startsWith("# ")).join("\n");
    throw new Error(`mcconfig -p x-cli-lin failed (${join(PROGRAM_DIR, "build.log")}):\n${errors.slice(-3000)}`);
  }
  return PROGRAM;
}

/**
 * The program for a Moddable app that includes the component: moddable-host/manifest.json with the
 * app's own modules (its "modules" entries with local paths, "main" among them), built into
 * `outDir`. Run it with --app: it runs the app's main, whose `import OTA from "xsota"` gets the
 * Linux ports (moddable-host/platform/ports.ts) and config.xsota from the driver's boot description.
 * The app's esp32 settings (includes, partitions, sdkconfig) are the devkit's and are not used here.
 */
export async function buildAppProgram(root: string, appDir: string, outDir: string): Promise<string> {
  const app = JSON.parse(readFileSync(join(appDir, "manifest.json"), "utf8")) as { modules?: Record<string, string | string[]> };
  const modules: Record<string, string | string[]> = {};
  for (const [specifier, sources] of Object.entries(app.modules ?? {})) {
    const local = ([] as string[]).concat(sources).filter((p) => p.startsWith("./") || p.startsWith("../")).map((p) => resolve(appDir, p));
    if (local.length) modules[specifier] = local;
  }
  const manifest = join(outDir, "manifest.json");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(manifest, JSON.stringify({ include: [join(REPO, "moddable-host", "manifest.json")], modules }, null, "\t"));
  return buildVariant(root, manifest, outDir, appDir);
}

/**
 * moddable-host/manifest.json with only the core of the agent: the features' specifiers mapped to
 * the core's stubs (src/features/no-*.ts, as manifest.json does for an app that includes no
 * feature) and the delta modules neither mapped nor preloaded, so the program loads none of the
 * features' modules. Paths made absolute: the manifest is written elsewhere.
 */
export function coreManifest(): Record<string, unknown> {
  const dir = join(REPO, "moddable-host");
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
    modules: Record<string, string | string[]>; preload: string[];
    typescript: { tsconfig: { compilerOptions: { types: string[] } } };
  };
  const abs = (p: string) => (p.startsWith("./") || p.startsWith("../") ? resolve(dir, p) : p);
  const modules: Record<string, string | string[]> = {};
  for (const [specifier, sources] of Object.entries(m.modules)) {
    if (specifier.startsWith("xsota/modules/delta/")) continue;
    const feature = /^xsota\/feature\/(\w+)$/.exec(specifier);
    modules[specifier] = feature ? join(REPO, "src", "features", `no-${feature[1]}`) : Array.isArray(sources) ? sources.map(abs) : abs(sources);
  }
  const preload = m.preload.filter((p) => !p.startsWith("xsota/modules/delta/"));
  const types = m.typescript.tsconfig.compilerOptions.types.map(abs);
  return { ...m, modules, preload, typescript: { tsconfig: { ...m.typescript.tsconfig, compilerOptions: { ...m.typescript.tsconfig.compilerOptions, types } } } };
}

export const CORE_PROGRAM_DIR = join(REPO, "out", "moddable-host-core");

/** The program with the core alone (coreManifest), in out/moddable-host-core; rebuilt when a source is newer. */
export async function buildCoreProgram(root: string): Promise<string> {
  const program = join(CORE_PROGRAM_DIR, "bin", "lin", "release", "xsota-moddable");
  if (existsSync(program) && statSync(program).mtimeMs >= newestSource()) return program;
  const manifest = join(CORE_PROGRAM_DIR, "manifest.json");
  mkdirSync(CORE_PROGRAM_DIR, { recursive: true });
  writeFileSync(manifest, JSON.stringify(coreManifest(), null, "\t"));
  return buildVariant(root, manifest, CORE_PROGRAM_DIR, "the core-only program");
}

/** mcconfig -m -p x-cli-lin of a manifest built on moddable-host's, into outDir, from the base program's objects. */
async function buildVariant(root: string, manifest: string, outDir: string, what: string): Promise<string> {
  // Start from the base program's objects (same tree, same C): make then compiles the app's modules
  // and relinks, instead of the whole XS engine and SDK again. Timestamps kept, so nothing is stale.
  const base = join(PROGRAM_DIR, "tmp", "lin", "release", "xsota-moddable");
  const tmp = join(outDir, "tmp", "lin", "release", "xsota-moddable");
  if (existsSync(join(base, "makefile")) && !existsSync(tmp)) {
    mkdirSync(dirname(tmp), { recursive: true });
    spawnSync("cp", ["-a", base, tmp]);
  }
  const program = join(outDir, "bin", "lin", "release", "xsota-moddable");
  const env = mcconfigEnv(root);
  // asynchronous (a test worker stays responsive through minutes of make) and at the lowest
  // priority, as the background build of test/moddable/setup.ts: the other tests keep their pace
  let log = "";
  const run = (cmd: string, args: string[], cwd: string) => new Promise<{ status: number | null; out: string }>((done) => {
    const child = spawn("nice", ["-n", "19", cmd, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", (e) => done({ status: null, out: out + String(e) }));
    child.on("close", (status) => {
      log += out;
      done({ status, out });
    });
  });
  // mcconfig writes the makefile; one tsc run compiles every TypeScript module (tscOnce: the
  // makefile's one tsc per module takes minutes); make then runs xsc, xsl and cc
  let r = await run(join(root, TOOLS, "mcconfig"), ["-p", "x-cli-lin", "-o", outDir, manifest], outDir);
  if (r.status === 0) r = await tscOnce(join(tmp, "modules"), join(tmp, "tsc", "~all"), undefined, run);
  if (r.status === 0) r = await run("make", ["-f", join(tmp, "makefile")], tmp);
  writeFileSync(join(outDir, "build.log"), log);
  if (r.status !== 0 || !existsSync(program)) {
    const errors = log.split("\n").filter((l) => !l.startsWith("# ")).join("\n");
    throw new Error(`mcconfig -p x-cli-lin of ${what} failed (${join(outDir, "build.log")}):\n${errors.slice(-3000)}`);
  }
  return program;
}

const LOCK = join(REPO, "out", "moddable-build.lock");

/**
 * Hold out/moddable-build.lock (a directory: mkdir is atomic) while `fn` runs, so two builds
 * (two `npm test`s, a test file run while the suite's background build is going, the bench)
 * never make the same tree at once: the second waits for the first, then finds its work done.
 * A lock whose process is gone is taken over.
 */
function withBuildLock<T>(fn: () => T, log: (line: string) => void = () => {}): T {
  mkdirSync(dirname(LOCK), { recursive: true });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let told = false;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(LOCK, "pid"), "utf8"));
      } catch {
        // just made, pid not written yet
      }
      let alive = holder === 0 && Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 10_000;
      if (holder) {
        try {
          process.kill(holder, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        rmSync(LOCK, { recursive: true, force: true });
        continue;
      }
      if (!told) log(`waiting for the Moddable build of process ${holder} (${LOCK})`);
      told = true;
      Atomics.wait(pause, 0, 0, 500);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The program, built when needed; or why it cannot be. */
export function moddableProgram(log?: (line: string) => void): { program: string } | { skip: string } {
  return withBuildLock(() => {
    const tree = moddableTree(log);
    if ("skip" in tree) return tree;
    return { program: buildProgram(tree.root, log) };
  }, log);
}

export type BuildResult = { program: string } | { skip: string } | { error: string };

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --result FILE: write the outcome there as JSON (tmp + rename, so a reader never sees half of it);
  // test/moddable/setup.ts runs the build this way in the background while other test files run.
  const at = process.argv.indexOf("--result");
  const resultFile = at > 0 ? process.argv[at + 1] : undefined;
  const log = (line: string) => process.stderr.write(line + "\n");
  if (resultFile) {
    let result: BuildResult;
    try {
      result = moddableProgram(log);
    } catch (e) {
      result = { error: (e as Error).message };
    }
    writeFileSync(resultFile + ".tmp", JSON.stringify(result));
    renameSync(resultFile + ".tmp", resultFile);
    process.exit("error" in result ? 1 : 0);
  }
  const out = moddableProgram(log);
  if ("skip" in out) {
    process.stderr.write(`skipped: ${out.skip}\n`);
    process.exit(3);
  }
  process.stdout.write(out.program + "\n");
}
