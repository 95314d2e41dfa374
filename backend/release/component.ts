/*
 * The component as a JavaScript app takes it: the same tree as the repo's (manifest.json,
 * features/<name>/manifest.json, modules/, src/), each TypeScript module compiled once here to
 * JavaScript beside its declarations (.d.ts). mcconfig finds a module's .js for the manifest's
 * extensionless path and takes the .d.ts beside it as that specifier's typings (mcmanifest.js
 * iterate + generate: dtsFiles become tsconfig paths), so:
 *   - a JavaScript app that includes it runs no tsc (no TypeScript module left to compile);
 *   - a TypeScript app type-checks its own code against the .d.ts.
 * The manifests are copied as they are: their paths have no extension and the layout is the same.
 * The compiler is the repo's own TypeScript with tsconfig.device.json (the device side's strict
 * settings and Moddable's typings), the same check `npm run typecheck` makes: a type error stops
 * the build (COMPONENT_BUILD) and nothing is written.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { OtaError } from "../../modules/errors";

export interface ComponentBuild {
  dir: string;
  /** Modules written, as `<path>.js` relative to dir. */
  modules: string[];
  /** Bytes of JavaScript written. */
  jsBytes: number;
  manifests: string[];
}

/** The folders of the device side that the manifests map (the rest of the repo is the host's). */
const DEVICE_DIRS = ["modules", "src", "features"];

function manifests(repo: string): string[] {
  const features = readdirSync(join(repo, "features"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(repo, "features", d.name, "manifest.json")))
    .map((d) => `features/${d.name}/manifest.json`);
  return ["manifest.json", ...features.sort()];
}

/** Compile the device side's TypeScript of `repo` into `dir` (replaced whole on success). */
export function buildComponent(repo: string, dir: string): ComponentBuild {
  const configPath = join(repo, "tsconfig.device.json");
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  if (read.error) throw new OtaError("COMPONENT_BUILD", ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const config = read.config as { include: string[] };
  // the device side without the examples (apps, not the component)
  config.include = config.include.filter((p) => !p.startsWith("examples/"));
  const staging = `${dir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, repo, {
    noEmit: false,
    declaration: true,
    sourceMap: false,
    outDir: staging,
    rootDir: repo,
    // what mcconfig's own tsc run emits with (mcmanifest.js generate): the same JavaScript either way
    target: ts.ScriptTarget.ES2025,
    module: ts.ModuleKind.Preserve,
  }, configPath);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const emitted = program.emit();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
  if (diagnostics.length) {
    rmSync(staging, { recursive: true, force: true });
    const text = ts.formatDiagnostics(diagnostics.slice(0, 10), { getCanonicalFileName: (f) => f, getCurrentDirectory: () => repo, getNewLine: () => "\n" });
    throw new OtaError("COMPONENT_BUILD", `${diagnostics.length} TypeScript error(s):\n${text}`);
  }
  // what is not TypeScript: the manifests, the native (C, its JS and typings), the hand-written typings
  const names = manifests(repo);
  for (const m of names) {
    mkdirSync(dirname(join(staging, m)), { recursive: true });
    cpSync(join(repo, m), join(staging, m));
  }
  cpSync(join(repo, "src", "native"), join(staging, "src", "native"), { recursive: true, filter: (f) => !/\.ts$/.test(f) || f.endsWith(".d.ts") });
  cpSync(join(repo, "src", "types"), join(staging, "src", "types"), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
  writeFileSync(join(staging, "README.md"), [
    `# xsota ${pkg.version}: the OTA component for Moddable apps, compiled to JavaScript`,
    "",
    "Made by `xsota component` from the TypeScript sources; do not edit. Include it from an app's manifest:",
    "",
    "```json",
    `"include": ["$(MODDABLE)/examples/manifest_base.json", "$(MODDABLE)/examples/manifest_net.json", "${dir}/manifest.json"]`,
    "```",
    "",
    "and, for a feature, `features/<fleet|delta|control>/manifest.json` after it. `import OTA from \"xsota\"` in",
    "main; the API and its types are in `src/component/xsota.d.ts`. No TypeScript compiler is needed for a",
    "JavaScript app; a TypeScript app type-checks against the .d.ts files beside each module.",
    "",
  ].join("\n"));
  const modules: string[] = [];
  let jsBytes = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".js")) {
        modules.push(relative(staging, p));
        jsBytes += readFileSync(p).length;
      } else if (e.name.endsWith(".d.ts")) {
        // tsc writes a kept `/// <reference path>` relative to where it emits, i.e. back into the
        // repo: point it at the copy in this tree instead
        const text = readFileSync(p, "utf8");
        const fixed = text.replace(/^(\/\/\/ <reference path=")([^"]+)(")/gm, (_all, head: string, path: string, tail: string) => {
          const target = resolve(dirname(p), path);
          if (!target.startsWith(repo + "/")) return head + path + tail;
          const copy = relative(dirname(p), join(staging, relative(repo, target)));
          return head + (copy.startsWith(".") ? copy : `./${copy}`) + tail;
        });
        if (fixed !== text) writeFileSync(p, fixed);
      }
    }
  };
  for (const d of DEVICE_DIRS) if (existsSync(join(staging, d))) walk(join(staging, d));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(staging, dir);
  return { dir, modules: modules.sort(), jsBytes, manifests: names };
}
