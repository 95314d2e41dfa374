import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { OtaError } from "../modules/errors";
import { parse, printJson, type Command } from "./common";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const MARK = "Made by `xsota component`";

export const command: Command = {
  name: "component",
  summary: "compile the component to JavaScript + typings, for apps built without tsc",
  help: `Usage: xsota component --out DIR [--force] [--json]

Write the Moddable component (manifest.json, features/*/manifest.json, modules/, src/) with each
TypeScript module compiled to JavaScript beside its declarations (.d.ts). A JavaScript app that
includes DIR/manifest.json builds with mcconfig and no TypeScript compiler; a TypeScript app
type-checks against the .d.ts files. The device side is type-checked first (tsconfig.device.json):
any error stops the build (COMPONENT_BUILD) and DIR is left as it was.

Options:
  --out DIR   where to write the component; replaced whole. A DIR that exists, is not empty and
              was not written by this command is refused unless --force
  --force     replace DIR even when it was not written by this command
  --json      print what was written as JSON

The app's manifest.json then includes DIR/manifest.json (and DIR/features/<name>/manifest.json
for a feature) where it would include the repo's.

Examples:
  xsota component --out xsota-js
  xsota component --out xsota-js --json
`,
  async run(argv) {
    const { values: v } = parse(argv, { out: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } }, false);
    if (!v.out) throw new OtaError("USAGE", "missing --out DIR");
    const dir = resolve(v.out);
    if (dir === REPO || REPO.startsWith(dir + "/")) throw new OtaError("USAGE", `--out ${v.out}: the repository itself`);
    if (existsSync(dir) && readdirSync(dir).length && !v.force) {
      const readme = join(dir, "README.md");
      if (!existsSync(readme) || !readFileSync(readme, "utf8").includes(MARK))
        throw new OtaError("USAGE", `--out ${v.out}: not empty and not written by xsota component (pass --force to replace it)`);
    }
    // Loaded here, not at the top: it brings the TypeScript compiler, which `--help` does not need.
    const { buildComponent } = await import("../backend/release/component");
    const built = buildComponent(REPO, dir);
    if (v.json) printJson(built);
    else process.stdout.write(`component: ${built.modules.length} modules, ${built.jsBytes} bytes of JavaScript, in ${dir}\ninclude ${join(dir, "manifest.json")} (features: ${built.manifests.slice(1).map((m) => join(dir, m)).join(", ")})\n`);
    return 0;
  },
};
