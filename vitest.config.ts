import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** Files that need Moddable's tools or program: run last, so a background build (test/moddable/setup.ts) overlaps the rest. */
const needsModdable = (file: string) => /test\/moddable\/|test\/device\/esp32-build\.|test\/bench\/moddable\./.test(file);

class ModdableLast extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => !needsModdable(f.moduleId)), ...sorted.filter((f) => needsModdable(f.moduleId))];
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Finds the Moddable program, or builds Moddable's tools and moddable-host in the background, for test/moddable.
    globalSetup: ["test/moddable/setup.ts"],
    pool: "forks",
    // vitest's default in run mode is one fork fewer than the cores: ONE fork on a 2-core machine,
    // the whole suite in series. Most files wait on sockets and child processes, not on the CPU.
    poolOptions: { forks: { maxForks: Math.max(2, availableParallelism() + 1) } },
    sequence: { sequencer: ModdableLast },
    testTimeout: 60_000,
    // Set-up hooks build the XS snapshot (xs.prepared()) and PKIs; on a fresh clone they compete
    // with the background Moddable build for 2 cores: test/xs/power-cut's took over 60 s once in CI.
    hookTimeout: 180_000,
    reporters: ["default"],
  },
});
