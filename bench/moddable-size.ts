/*
 * Code size on the real toolchain: the bytes of bytecode xsl keeps in mc.xs.c for the agent
 * (modules/ + src/ + the setup/xsota module) in the esp32 release link of manifest.json: the
 * scripts it keeps (every module src/main imports: their functions run from that bytecode in
 * flash) plus the functions of the modules it preloads (src/main, setup/xsota), which it writes
 * inline in the ROM heap without their module bodies. Beside it, what preloading adds to flash
 * that is not bytecode: the ROM heap's slots for the agent's module objects (functions, classes,
 * frozen tables; 16 bytes each on the chip) and the objects left unfrozen (a RAM pointer each at
 * boot); and the .xsb files xsc wrote (which also carry each module's symbol and import tables
 * that xsl folds into the shared key table). Compared with Mender MCU's 33 KiB ROM and the AWS
 * IoT OTA library's 11.6 KB of code; the goal is <= 64 KiB.
 * Skipped, with the reason, when no Moddable tree with built host tools is found.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, buildEsp32, findModdable, isAgentModule, xsbSizes, type Esp32Build, type ModdableTree, type ScriptSize } from "./moddable-esp32";

export const CODE_GOAL = 64 * 1024;
export const MENDER_ROM = 33 * 1024;
export const AWS_OTA_CODE = 11_600;

/** sizeof(txSlot) on the ESP32. */
const ROM_SLOT_BYTES = 16;

export interface CodeSizeResult {
  skipped?: string;
  /** Bytecode bytes in mc.xs.c: kept scripts + preloaded functions' inline code. */
  agent: number;
  modules: number;
  src: number;
  /** The same modules' .xsb files. */
  xsb: number;
  /** Largest agent modules by linked bytes. */
  largest: { name: string; code: number }[];
  /** Everything else xsl linked as bytecode (SDK modules that are not preloaded), for scale. */
  sdk: number;
  linked: { instances: number; keys: number };
  /** The agent's preloaded modules, their inline bytecode, and the ROM heap bytes and aliases preloading adds. */
  preload: { modules: string[]; inlineCode: number; romBytes: number; aliases: number };
  seconds: number;
}

const isAgent = (s: ScriptSize) => isAgentModule(s.name);

export async function codeSize(options: { outDir?: string } = {}): Promise<CodeSizeResult> {
  const empty = { agent: 0, modules: 0, src: 0, xsb: 0, largest: [], sdk: 0, linked: { instances: 0, keys: 0 }, preload: { modules: [], inlineCode: 0, romBytes: 0, aliases: 0 }, seconds: 0 };
  const moddable = findModdable();
  if ("reason" in moddable) return { ...empty, skipped: moddable.reason };
  const t0 = performance.now();
  const build = await buildEsp32({ moddable, outDir: options.outDir ?? join(REPO, "out", "esp32-build") });
  if (!build.ok) return { ...empty, skipped: `the esp32 build failed at ${build.failed}: ${build.log.trim().split("\n").slice(-3).join(" / ")}` };
  // src/setup-deadline.ts is linked twice: as "setup/xsota" (run at boot) and through src/* (never imported)
  const agent = build.scripts.filter(isAgent);
  const sum = (xs: ScriptSize[]) => xs.reduce((n, s) => n + s.code, 0);
  const xsb = xsbSizes(join(build.tmpDir, "modules"));
  let xsbAgent = 0;
  for (const [name, bytes] of xsb) if (isAgentModule(name)) xsbAgent += bytes;
  const p = build.preload ?? { modules: [], inlineCode: 0, heapSlots: 0, aliases: 0 };
  // modules/ and src/: the scripts xsl keeps; the listed modules' functions are in preload.inlineCode
  return {
    agent: sum(agent) + p.inlineCode,
    modules: sum(agent.filter((s) => s.name.startsWith("xsota/modules/"))),
    src: sum(agent.filter((s) => !s.name.startsWith("xsota/modules/"))),
    xsb: xsbAgent,
    largest: [...agent].sort((a, b) => b.code - a.code).slice(0, 6).map(({ name, code }) => ({ name, code })),
    sdk: sum(build.scripts.filter((s) => !isAgent(s))),
    linked: build.linked!,
    preload: { modules: p.modules, inlineCode: p.inlineCode, romBytes: p.heapSlots * ROM_SLOT_BYTES, aliases: p.aliases },
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
}

/** The component's optional features: each folder of features/ with a manifest.json (modules/features.ts). */
export function featureManifests(): { name: string; manifest: string }[] {
  const dir = join(REPO, "features");
  return readdirSync(dir).sort().filter((f) => existsSync(join(dir, f, "manifest.json"))).map((name) => ({ name, manifest: join(dir, name, "manifest.json") }));
}

/**
 * The agent's modules (xsl's names) that only a feature's manifest maps: none of them may be linked
 * in an app that includes the core alone. The feature's own specifier ("xsota/feature/fleet") is
 * left out: the core maps it too, to its stub.
 */
export function featureModules(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { name, manifest } of featureManifests()) {
    const m = JSON.parse(readFileSync(manifest, "utf8")) as { platforms: { esp32: { modules: Record<string, string | string[]> } } };
    const names: string[] = [];
    const dir = join(manifest, "..");
    for (const [key, value] of Object.entries(m.platforms.esp32.modules)) {
      if (key === "~" || !key.endsWith("/*")) continue;
      for (const source of ([] as string[]).concat(value)) {
        const path = join(dir, source);
        const base = path.slice(path.lastIndexOf("/") + 1);
        const files = base === "*" ? readdirSync(join(path, "..")).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).map((f) => f.slice(0, -3)) : [base];
        for (const f of files) names.push(key.slice(0, -1) + f);
      }
    }
    out.set(name, names.sort());
  }
  return out;
}

/**
 * A user's app outside the repo that includes the component (the core, manifest.json) and the
 * features named (their manifests after the core's), with a JavaScript main that starts "xsota".
 */
export function featureApp(dir: string, features: readonly string[]): string {
  const app = join(dir, features.length ? `app-${features.join("-")}` : "app-core");
  mkdirSync(app, { recursive: true });
  const example = JSON.parse(readFileSync(join(REPO, "examples", "minimal", "manifest.json"), "utf8")) as { config: unknown };
  const byName = new Map(featureManifests().map((f) => [f.name, f.manifest]));
  writeFileSync(join(app, "manifest.json"), JSON.stringify({
    include: ["$(MODDABLE)/examples/manifest_base.json", "$(MODDABLE)/examples/manifest_net.json", join(REPO, "manifest.json"), ...features.map((f) => byName.get(f) ?? join(REPO, "features", f, "manifest.json"))],
    modules: { "*": "./main" },
    config: example.config,
  }, null, "\t"));
  writeFileSync(join(app, "main.js"), 'import OTA from "xsota";\nnew OTA().start();\n');
  return app;
}

/** The agent's bytecode in one esp32 link, accounted as codeSize's `agent`: scripts kept + preloaded functions inline. */
export function agentBytecode(build: Esp32Build): number {
  return build.scripts.filter(isAgent).reduce((n, s) => n + s.code, 0) + (build.preload?.inlineCode ?? 0);
}

export interface FeatureSizeRow {
  /** "core" or "full" (core + every feature). */
  name: string;
  features: string[];
  /** Agent bytecode xsl links (the same accounting as codeSize().agent). */
  agent: number;
  /** The agent's linked modules (xsl's names). */
  modules: string[];
}

export interface FeatureSizeResult {
  skipped?: string;
  rows: FeatureSizeRow[];
  seconds: number;
}

/**
 * The agent's linked bytecode for esp32 in two apps outside the repo: one including only the core
 * (manifest.json), one including the core and every feature (features/<name>/manifest.json).
 */
export async function featureSizes(options: { moddable?: ModdableTree; outDir?: string } = {}): Promise<FeatureSizeResult> {
  const found = options.moddable ?? findModdable();
  if ("reason" in found) return { skipped: found.reason, rows: [], seconds: 0 };
  const t0 = performance.now();
  const dir = options.outDir ?? mkdtempSync(join(tmpdir(), "xsota-features-"));
  const rows: FeatureSizeRow[] = [];
  try {
    const all = featureManifests().map((f) => f.name);
    for (const [name, features] of [["core", []], ["full", all]] as const) {
      const app = featureApp(dir, features);
      const build = await buildEsp32({ moddable: found, outDir: join(dir, `out-${name}`), manifestDir: app });
      if (!build.ok) return { skipped: `the esp32 build of the ${name} app failed at ${build.failed}: ${build.log.trim().split("\n").slice(-3).join(" / ")}`, rows, seconds: 0 };
      rows.push({ name, features: [...features], agent: agentBytecode(build), modules: build.scripts.filter(isAgent).map((s) => s.name).sort() });
    }
  } finally {
    if (!options.outDir) rmSync(dir, { recursive: true, force: true });
  }
  return { rows, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}
