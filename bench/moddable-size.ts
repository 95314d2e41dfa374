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
import { join } from "node:path";
import { REPO, buildEsp32, findModdable, isAgentModule, xsbSizes, type ScriptSize } from "./moddable-esp32";

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
