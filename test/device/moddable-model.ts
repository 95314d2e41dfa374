/*
 * Just enough of Moddable's mcconfig (tools/mcmanifest.js, SDK 8.2.3) to check our manifest.json
 * without the SDK: the known keys, the module rule (wildcards -> targets), the tsconfig that
 * TSConfigFile.generate writes, XS's relative module resolution (xs/platforms/mc/xsHosts.c
 * fxFindModule) and the sdkconfig merge (generateConfigurationRules). Each returns problems as
 * strings so a test can show them, and so a broken input can be shown to produce some.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export type Json = Record<string, unknown>;

/** parseManifest + mergePlatform + mcconfig's own keys (tools/mcmanifest.js). */
const PLATFORM_KEYS = [
  "build", "include", "creation", "defines", "config", "strip", "modules", "preload", "resources", "data",
  "ble", "recipes", "commonjs", "error", "warning", "run", "typescript", "ffi", "dependency", "components",
  "zephyrConfig", "zephyrShields", "zephyrOverlay",
];
const TOP_KEYS = [...PLATFORM_KEYS, "platforms", "bundle"];
const CREATION_KEYS = ["static", "chunk", "heap", "stack", "keys", "parser", "main", "nativeStack"];

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
const strings = (v: unknown): v is string | string[] =>
  typeof v === "string" || (Array.isArray(v) && v.every((s) => typeof s === "string"));

function checkSection(m: Json, where: string, keys: string[], problems: string[]): void {
  for (const k of Object.keys(m)) if (!keys.includes(k)) problems.push(`${where}: unknown key "${k}"`);
  if ("include" in m && !strings(m.include)) problems.push(`${where}.include: expected a path or an array of paths`);
  if ("preload" in m && !strings(m.preload)) problems.push(`${where}.preload: expected module names`);
  if ("strip" in m && !strings(m.strip)) problems.push(`${where}.strip: expected a string or an array`);
  for (const k of ["modules", "resources", "data"]) {
    if (!(k in m)) continue;
    if (!isObject(m[k])) problems.push(`${where}.${k}: expected an object of target -> source(s)`);
    else for (const [t, s] of Object.entries(m[k] as Json)) if (!strings(s)) problems.push(`${where}.${k}["${t}"]: expected source path(s)`);
  }
  for (const k of ["build", "config", "defines", "creation", "typescript"]) if (k in m && !isObject(m[k])) problems.push(`${where}.${k}: expected an object`);
  if (isObject(m.build)) for (const [k, v] of Object.entries(m.build)) if (typeof v !== "string") problems.push(`${where}.build.${k}: expected a string`);
  if (isObject(m.creation)) {
    for (const k of Object.keys(m.creation)) if (!CREATION_KEYS.includes(k)) problems.push(`${where}.creation: unknown key "${k}"`);
    if ("main" in m.creation && typeof m.creation.main !== "string") problems.push(`${where}.creation.main: expected a module specifier`);
  }
}

/** Problems with the shape of a manifest (known keys, value types), as mcconfig reads it. */
export function shapeProblems(m: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(m)) return ["manifest: expected a JSON object"];
  checkSection(m, "manifest", TOP_KEYS, problems);
  if ("platforms" in m) {
    if (!isObject(m.platforms)) problems.push("manifest.platforms: expected an object");
    else for (const [p, v] of Object.entries(m.platforms)) {
      if (!isObject(v)) problems.push(`platforms.${p}: expected an object`);
      else checkSection(v, `platforms.${p}`, PLATFORM_KEYS, problems);
    }
  }
  return problems;
}

/** The manifest as mcconfig combines it for one platform: top level plus platforms[platform]. */
export function forPlatform(m: Json, platform: string): { modules: [string, string][]; build: Record<string, string>; includes: string[]; creation: Json; types: string[]; compilerOptions: Json } {
  const parts = [m, isObject(m.platforms) && isObject(m.platforms[platform]) ? (m.platforms[platform] as Json) : {}];
  const out = { modules: [] as [string, string][], build: {} as Record<string, string>, includes: [] as string[], creation: {} as Json, types: [] as string[], compilerOptions: {} as Json };
  for (const p of parts) {
    for (const [target, src] of Object.entries(isObject(p.modules) ? p.modules : {})) for (const s of ([] as string[]).concat(src as string)) out.modules.push([target, s]);
    Object.assign(out.build, isObject(p.build) ? p.build : {});
    out.includes.push(...([] as string[]).concat((p.include as string | string[] | undefined) ?? []));
    Object.assign(out.creation, isObject(p.creation) ? p.creation : {});
    const ts = isObject(p.typescript) && isObject(p.typescript.tsconfig) && isObject(p.typescript.tsconfig.compilerOptions) ? p.typescript.tsconfig.compilerOptions : {};
    const { types, ...rest } = ts as Json;
    out.types.push(...((types as string[] | undefined) ?? []));
    Object.assign(out.compilerOptions, rest);
  }
  return out;
}

/** A local path ("./x" relative to the manifest); undefined for $(VAR) paths into the SDK. */
export function localPath(value: string, manifestDir: string): string | undefined {
  if (value.startsWith("./") || value.startsWith("../")) return resolve(manifestDir, value);
  return undefined;
}

export interface ModuleFile {
  /** Module specifier as XS knows it (mcmanifest: target + file name, no extension). */
  target: string;
  source: string;
  kind: "ts" | "d.ts" | "js" | "c" | "other";
}

/** Rule.iterate for local sources: "*" in a source matches files (not folders) of its directory. */
export function expandModules(modules: [string, string][], manifestDir: string): { files: ModuleFile[]; problems: string[] } {
  const files: ModuleFile[] = [];
  const problems: string[] = [];
  for (const [targetIn, sourceIn] of modules) {
    const source = localPath(sourceIn, manifestDir);
    if (!source) continue;
    const dir = dirname(source);
    const name = source.slice(dir.length + 1);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      problems.push(`modules["${targetIn}"]: directory not found: ${sourceIn}`);
      continue;
    }
    const star = name.lastIndexOf("*");
    const target = targetIn === "*" ? "" : targetIn.endsWith("*") ? targetIn.slice(0, -1) : targetIn;
    let matched = 0;
    for (const entry of readdirSync(dir).sort()) {
      if (entry.startsWith(".")) continue;
      const path = join(dir, entry);
      if (!statSync(path).isFile()) continue;
      const kind = entry.endsWith(".d.ts") ? "d.ts" : entry.endsWith(".ts") ? "ts" : entry.endsWith(".js") ? "js" : entry.endsWith(".c") ? "c" : "other";
      const base = kind === "d.ts" ? entry.slice(0, -5) : entry.replace(/\.[^.]+$/, "");
      if (star >= 0 ? !base.startsWith(name.slice(0, star)) : base !== name && entry !== name) continue;
      matched++;
      const stem = star >= 0 ? base.slice(star) : base;
      files.push({ target: targetIn === "*" || targetIn.endsWith("*") ? target + stem : targetIn, source: path, kind });
    }
    if (matched === 0) problems.push(`modules["${targetIn}"]: no modules match ${sourceIn}`);
  }
  return { files, problems };
}

/**
 * XS's resolution of a relative specifier from the module named `from` (fxFindModule): "./x"
 * and "../x" climb the importer's path; climbing above the root fails (null).
 */
export function xsResolve(from: string, specifier: string): string | null {
  let dots = 0;
  let rest = specifier;
  if (rest.startsWith("./")) { dots = 1; rest = rest.slice(1); }
  else if (rest.startsWith("../")) {
    dots = 2; rest = rest.slice(2);
    while (rest.startsWith("/../")) { dots++; rest = rest.slice(3); }
  } else return specifier.replace(/\.m?js$/, "");
  const parts = ("/" + from).split("/");
  parts.pop();
  for (let d = dots - 1; d > 0; d--) {
    if (parts.length <= 1) return null;
    parts.pop();
  }
  return (parts.join("/") + rest).slice(1).replace(/\.m?js$/, "");
}

/**
 * The compiler options TSConfigFile.generate writes (tsconfig-base.json) for these files: its
 * defaults, then the manifests' typescript.tsconfig.compilerOptions over them (mergePlatform).
 */
export function mcconfigCompilerOptions(files: ModuleFile[], extraPaths: Record<string, string>, types: string[], fromManifest: Json = {}): Json {
  const paths: Record<string, string[]> = {};
  for (const f of files) if (f.kind === "d.ts") paths[f.target] = [f.source.slice(0, -5)];
  for (const f of files) if (f.kind === "ts") paths[f.target] = [f.source.slice(0, -3)];
  for (const f of files) if (f.kind === "js" && !(f.target in paths)) paths[f.target] = [f.source.slice(0, -3)];
  for (const [k, v] of Object.entries(extraPaths)) paths[k] ??= [v];
  return {
    forceConsistentCasingInFileNames: true,
    module: "preserve",
    resolveJsonModule: true,
    paths,
    // as mcconfig 8.2.3 writes them (TypeScript 6 knows es2025; test/device/esp32-build.test.ts
    // runs mcconfig's own tsconfig when a Moddable tree is built)
    lib: ["es2025"],
    target: "ES2025",
    sourceMap: true,
    ...fromManifest,
    types,
    noEmit: true,
  };
}

export type Sdkconfig = Map<string, string>;

/** KEY=value lines; comments and blanks skipped; later lines win. */
export function parseSdkconfig(text: string): Sdkconfig {
  const out: Sdkconfig = new Map();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** generateConfigurationRules: application entries replace or extend the base; "n" becomes "". */
export function mergeSdkconfig(base: Sdkconfig, app: Sdkconfig): Sdkconfig {
  const out = new Map(base);
  for (const [k, v] of app) out.set(k, base.has(k) && v === "n" ? "" : v);
  return out;
}

/** True when a Kconfig bool ends up enabled. */
export const enabled = (c: Sdkconfig, key: string) => c.get(key) === "y";

export function rel(repo: string, p: string): string {
  return relative(repo, p).split("\\").join("/");
}
