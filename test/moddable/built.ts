/*
 * What test/moddable runs on: the program globalSetup (test/moddable/setup.ts) found or is building.
 * `skip` is the reason when no Moddable tree can be had (the tests skip and say why); program()
 * waits for a background build and throws when it failed, so a broken build fails these tests.
 */
import { existsSync, readFileSync } from "node:fs";
import { inject } from "vitest";
import type { BuildResult } from "../../host-sim/engines/moddable/build";

/** The longest a test file waits for the background build (a fresh clone's is about 2.5 minutes on 2 cores). */
export const BUILD_WAIT_MS = 15 * 60_000;

const given = inject("moddable");
export const skip = "skip" in given ? given.skip : undefined;
if (skip) console.warn(`test/moddable skipped: ${skip}`);

export async function program(): Promise<string> {
  if ("program" in given) return given.program;
  if ("skip" in given) throw new Error(given.skip);
  const deadline = Date.now() + BUILD_WAIT_MS;
  while (!existsSync(given.pending)) {
    if (Date.now() > deadline) throw new Error(`BUILD FAILED: no result in ${given.pending} after ${BUILD_WAIT_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const result = JSON.parse(readFileSync(given.pending, "utf8")) as BuildResult;
  if ("program" in result) return result.program;
  throw new Error(`BUILD FAILED: ${"error" in result ? result.error : result.skip}`);
}
