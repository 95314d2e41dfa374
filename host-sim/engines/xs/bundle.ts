/*
 * Bundle the firmware (host-sim/engines/firmware.ts, and so modules/) with the XS-side port stubs into
 * one script for the worker: esbuild, platform "neutral" (no Node builtins resolve), format
 * iife. Every device-side file goes through the XS-safety check first: a Node module, Buffer,
 * process, require, a host timer... fails the build, naming file and line.
 */
import { build, type Plugin } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { OtaError } from "../../../modules/errors";
import type { Finding } from "./xs-safety";

type Check = (file: string, text: string) => Finding[];
/** The AST check needs the TypeScript parser (a devDependency): without it, only esbuild's own
 *  guards remain (platform neutral, no bare imports). npm test always has it. */
let checker: Promise<Check | undefined> | undefined;
function loadChecker(): Promise<Check | undefined> {
  checker ??= import("./xs-safety").then((m) => m.checkSource, () => undefined);
  return checker;
}

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, "../../..");
export const DEFAULT_FIRMWARE = join(ROOT, "host-sim/engines/firmware.ts");
const GUEST_MAIN = join(here, "guest/main.ts");

export interface Bundle {
  /** The script to evaluate in the worker. */
  code: string;
  /** Files that went in (relative to the repository). */
  inputs: string[];
  findings: Finding[];
}

export class XsSafetyError extends OtaError {
  constructor(readonly findings: Finding[], extra = "") {
    super("INTERNAL", `not XS-safe${extra}:\n${findings.map((f) => `  ${f.file}:${f.line}: ${f.what}`).join("\n")}`);
    this.name = "XsSafetyError";
  }
}

function safetyPlugin(findings: Finding[], check: Check | undefined): Plugin {
  return {
    name: "xs-safety",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        if (!args.path.startsWith(".") && !args.path.startsWith("/")) {
          findings.push({ file: relative(ROOT, args.importer) || "<entry>", line: 0, what: `imports '${args.path}' (no packages or Node modules in the XS bundle)` });
          return { path: args.path, external: true };
        }
        return undefined;
      });
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const rel = relative(ROOT, args.path);
        if (check) findings.push(...check(rel, text));
        return { contents: text, loader: "ts" };
      });
    },
  };
}

/**
 * Build the bundle for `firmware` (a module exporting `bootFirmware(ports, boot)`).
 * Throws XsSafetyError (code INTERNAL) when anything in it is not XS-safe, or esbuild's error.
 */
export async function bundleFirmware(firmware = DEFAULT_FIRMWARE): Promise<Bundle> {
  const findings: Finding[] = [];
  const entry = [
    `import { install } from ${JSON.stringify(GUEST_MAIN)};`,
    `import { bootFirmware } from ${JSON.stringify(resolve(firmware))};`,
    `install(bootFirmware);`,
  ].join("\n");
  const result = await build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: "xs-entry.ts", loader: "ts" },
    bundle: true,
    write: false,
    platform: "neutral",
    format: "iife",
    target: "es2022",
    mainFields: [],
    metafile: true,
    logLevel: "silent",
    plugins: [safetyPlugin(findings, await loadChecker())],
  });
  if (findings.length) throw new XsSafetyError(findings);
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith("<") && p !== "xs-entry.ts");
  return { code: result.outputFiles[0]!.text, inputs, findings };
}
