/*
 * vitest globalSetup for test/moddable: decide at once whether the Moddable program is there, can
 * be built, or cannot be had (and why). When it must be built (a fresh clone: Moddable's tools,
 * then moddable-host with mcconfig, about 2.5 minutes), the build runs in the background
 * (host-sim/engines/moddable/build.ts --result FILE) while the other test files run; test/moddable runs
 * last (vitest.config.ts) and waits for the result file (test/moddable/built.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO, freshProgram, whyNoModdable } from "../../host-sim/engines/moddable/build";

export type Moddable = { program: string } | { skip: string } | { pending: string };

declare module "vitest" {
  export interface ProvidedContext {
    moddable: Moddable;
  }
}

let child: ChildProcess | undefined;

export default function setup(project: TestProject): () => void {
  // XSOTA_MODDABLE_PROGRAM: run the tests on another build of moddable-host (e.g. other creation sizes).
  // XSOTA_MODDABLE=skip: a targeted run that needs no Moddable program starts no build.
  const other = process.env.XSOTA_MODDABLE_PROGRAM;
  const why = process.env.XSOTA_MODDABLE === "skip" ? "XSOTA_MODDABLE=skip" : other ? undefined : whyNoModdable();
  const ready = other ?? (why ? undefined : freshProgram());
  if (why) {
    process.stderr.write(`[moddable] test/moddable skipped: ${why}\n`);
    project.provide("moddable", { skip: why });
  } else if (ready) {
    project.provide("moddable", { program: ready });
  } else {
    mkdirSync(join(REPO, "out"), { recursive: true });
    const result = join(REPO, "out", "moddable-build.json");
    rmSync(result, { force: true });
    process.stderr.write(`[moddable] building Moddable's tools and moddable-host in the background (result: ${result})\n`);
    child = spawn(process.execPath, ["--import", "tsx", join(REPO, "host-sim", "engines", "moddable", "build.ts"), "--result", result], {
      cwd: REPO,
      stdio: ["ignore", "ignore", "pipe"],
    });
    // At the lowest priority (make and mcconfig's ~45 tsc inherit it): on 2 cores the build at equal
    // priority made other files' real-time limits run out (a CI dry run: test/xs/power-cut 5x slower).
    // The files that need the program wait for it.
    try {
      if (child.pid !== undefined) setPriority(child.pid, 19);
    } catch {
      // not permitted here: the build runs at the tests' priority
    }
    let rest = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) process.stderr.write(`[moddable] ${line}\n`);
    });
    project.provide("moddable", { pending: result });
  }
  return () => {
    if (child && child.exitCode === null) child.kill();
  };
}
