/*
 * vitest globalSetup: build (or reuse) the Moddable tools and moddable-host's Linux program once
 * per run, before any test file, so `npm test` (and .ci/run) builds what test/moddable needs.
 * Tests read the outcome with inject("moddable"): the program's path, or why there is none.
 */
import type { TestProject } from "vitest/node";
import { moddableProgram } from "../../host-sim/moddable/build";

declare module "vitest" {
  export interface ProvidedContext {
    moddable: { program: string } | { skip: string };
  }
}

export default function setup(project: TestProject): void {
  const t0 = Date.now();
  let result: { program: string } | { skip: string };
  try {
    // XSOTA_MODDABLE_PROGRAM: run the tests on another build of moddable-host (e.g. other creation sizes)
    const other = process.env.XSOTA_MODDABLE_PROGRAM;
    result = other ? { program: other } : moddableProgram((line) => process.stderr.write(`[moddable] ${line}\n`));
  } catch (e) {
    // A broken build is a failure of the tests that need it, not a skip: they report it.
    result = { skip: `BUILD FAILED: ${(e as Error).message}` };
  }
  if ("program" in result) process.stderr.write(`[moddable] program ready in ${Date.now() - t0} ms: ${result.program}\n`);
  else process.stderr.write(`[moddable] test/moddable skipped: ${result.skip}\n`);
  project.provide("moddable", result);
}
