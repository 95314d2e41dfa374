/*
 * mcconfig gives each TypeScript module a tsconfig of its own and its makefile runs one tsc per
 * module (seconds each: minutes for the agent's 70). tscOnce compiles them all in one tsc run and
 * puts each output where that module's rule expects it, newer than its inputs, so make skips the
 * rules. Used by the esp32 build (bench/moddable-esp32.ts) and the Linux program's variants
 * (host-sim/engines/moddable/build.ts).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The per-module tsconfigs mcconfig wrote, gathered into one (MODULES_DIR/~all-tsconfig.json); undefined when there are none. */
export function tscOncePlan(modulesDir: string, allOut: string, only?: RegExp): { combined: string; configs: { outDir: string; file: string }[] } | undefined {
  const configs: { outDir: string; file: string }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.endsWith("-tsconfig.json") && e !== "~all-tsconfig.json") {
        const c = JSON.parse(readFileSync(p, "utf8")) as { compilerOptions: { outDir: string }; files: string[] };
        // mcconfig never deletes the tsconfig of a module an earlier build had: skip those whose source is gone
        if (!existsSync(c.files[0]!)) continue;
        if (!only || only.test(p.slice(modulesDir.length).replace(/-tsconfig\.json$/, ".xsb"))) configs.push({ outDir: c.compilerOptions.outDir, file: c.files[0]! });
      }
    }
  };
  walk(modulesDir);
  if (!configs.length) return undefined;
  const combined = join(modulesDir, "~all-tsconfig.json");
  writeFileSync(combined, JSON.stringify({ extends: join(modulesDir, "tsconfig-base.json"), compilerOptions: { rootDir: "/", outDir: allOut }, files: configs.map((c) => c.file) }, null, "\t"));
  return { combined, configs };
}

/** After the one tsc run: each module's output where its makefile rule expects it (newer than its inputs, so make skips the rule). */
export function tscOncePlace(plan: { configs: { outDir: string; file: string }[] }, allOut: string): void {
  for (const c of plan.configs) {
    const js = c.file.replace(/\.ts$/, ".js");
    for (const f of [js, js + ".map"]) {
      const from = join(allOut, f), to = join(c.outDir, f);
      if (!existsSync(from)) continue;
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
    }
  }
}

/** The per-module tsconfigs mcconfig wrote (MODULES_DIR/<module>-tsconfig.json), compiled in one tsc run. */
export async function tscOnce(modulesDir: string, allOut: string, only: RegExp | undefined, run: (cmd: string, args: string[], cwd: string) => Promise<{ status: number | null; out: string }>) {
  const plan = tscOncePlan(modulesDir, allOut, only);
  if (!plan) return { status: 0, out: "" };
  const r = await run("tsc", ["-p", plan.combined], modulesDir);
  if (r.status !== 0) return r;
  tscOncePlace(plan, allOut);
  return r;
}
