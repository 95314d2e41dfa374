/*
 * The ESP32 build with Moddable's own tools, up to the point that needs ESP-IDF (bench/moddable-esp32.ts):
 * mcconfig -p esp32 resolves manifest.json, the makefile's targets run mcconfig's tsc against the
 * SDK's typings and xsc on every module, xsl links mc.xs.c. Any error before the IDF fails here.
 * Skipped, with the reason, when no Moddable tree with built host tools is found.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { REPO, buildEsp32, findModdable, type Esp32Build, type ModdableTree } from "../../bench/moddable-esp32";
import { skip, program, BUILD_WAIT_MS } from "../moddable/built";
import { parseSdkconfig } from "./moddable-model";

// The host tools come from the same build as test/moddable's program (test/moddable/setup.ts: in
// the background on a fresh clone, this file running last with test/moddable); skipped with its reason.
let moddable: ModdableTree;

/** Kconfig's reading of a defaults file: "# CONFIG_X is not set" is X=n, the last assignment wins. */
function lastAssignments(text: string): Map<string, string> {
  const out = parseSdkconfig(text);
  for (const m of text.matchAll(/^# (CONFIG_\w+) is not set$/gm)) if (text.lastIndexOf(`${m[1]}=`) < (m.index ?? 0)) out.set(m[1]!, "n");
  return out;
}

function localModules(): string[] {
  const names: string[] = [];
  for (const dir of ["modules", "src"])
    for (const f of readdirSync(join(REPO, dir)))
      if (f.endsWith(".ts") && !f.endsWith(".d.ts") && f !== "setup-deadline.ts") names.push(`${dir}/${f.slice(0, -3)}`);
  return names.concat("src/native/esp32", "setup/xsota"); // src/setup-deadline.ts is linked as the setup module
}

describe.skipIf(skip !== undefined)("ESP32 build with Moddable's mcconfig, tsc, xsc and xsl (no ESP-IDF)", () => {
  let build: Esp32Build;
  beforeAll(async () => {
    await program();
    const found = findModdable();
    if ("reason" in found) throw new Error(found.reason);
    moddable = found;
  }, BUILD_WAIT_MS + 10_000);
  const outDir = mkdtempSync(join(tmpdir(), "xsota-esp32-"));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it("resolves manifest.json for -p esp32, compiles every module and links mc.xs.c", async () => {
    build = await buildEsp32({ moddable, outDir });
    expect(build.ok, `${build.failed} failed:\n${build.log.slice(-4000)}`).toBe(true);
    // every module of modules/ and src/ is in the link (none dropped). xsl preloads the modules
    // manifest.json lists: their functions are written inline in ROM and their scripts carry no
    // bytecode (module bodies dropped); every other module they import ran at link time too (its
    // objects are in the ROM heap) and keeps its bytecode in flash for the functions that refer to it.
    const linked = new Map(build.scripts.map((s) => [s.name, s]));
    const preloaded = (JSON.parse(readFileSync(join(REPO, "manifest.json"), "utf8")) as { preload: string[] }).preload;
    expect(preloaded.slice(0, 2)).toEqual(["src/main", "setup/xsota"]);
    // the big ones whose module bodies only build tables are listed (README "Code size")
    for (const name of ["modules/errors", "modules/config", "modules/policy", "modules/delta/patch"]) expect(preloaded).toContain(name);
    for (const name of localModules()) {
      expect(linked.get(name), name).toBeDefined();
      if (preloaded.includes(name)) expect(linked.get(name)!.code, name).toBe(0);
      else expect(linked.get(name)!.code, name).toBeGreaterThan(0);
    }
    expect(linked.get("src/native/esp32")!.host).toBe(true);
    expect([...(build.preload?.modules ?? [])].sort()).toEqual([...preloaded].sort());
    // moddable-host lists the same modules (but those Linux replaces), so the tests run them as the devkit does
    const host = (JSON.parse(readFileSync(join(REPO, "moddable-host", "manifest.json"), "utf8")) as { preload: string[] }).preload;
    expect(preloaded.filter((m) => !["src/main", "setup/xsota", "src/flash", "src/system"].includes(m) && !host.includes(m))).toEqual([]);
    expect(build.preload!.inlineCode).toBeGreaterThan(500);
    // the agent's module objects (about 80 KB) are in the ROM heap, not built in RAM at boot
    expect(build.preload!.heapSlots * 16).toBeGreaterThan(50_000);
    // constant tables are frozen (modules/constant.ts), so xsl leaves none of ours aliasable in RAM;
    // the one cache it notes is semver's RegExp, made in RAM at the first parse on purpose
    expect(build.xslWarnings.filter((w) => /(modules|src)\//.test(w) && !/ semverRe: no const$/.test(w))).toEqual([]);
    expect(build.linked!.instances).toBeGreaterThan(0);
  }, 240_000);

  it("hands ESP-IDF our partition table and an sdkconfig with rollback, validation and the version", () => {
    const proj = join(build.tmpDir, "xsProj-esp32");
    expect(readFileSync(join(proj, "partitions.csv"), "utf8")).toBe(readFileSync(join(REPO, "partitions.csv"), "utf8"));
    const makefile = readFileSync(join(build.tmpDir, "makefile"), "utf8");
    expect(makefile).toMatch(new RegExp(`^SDKCONFIGPATH = ${join(REPO, "sdkconfig")}$`, "m"));
    expect(makefile).toMatch(/^EXPECTED_ESP_IDF = v6\.0$/m);
    const merged = lastAssignments(readFileSync(join(proj, "sdkconfig.mc"), "utf8"));
    const version = (JSON.parse(readFileSync(join(REPO, "manifest.json"), "utf8")) as { config: { version: string } }).config.version;
    expect(merged.get("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE")).toBe("y");
    expect(["", "n"]).toContain(merged.get("CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS"));
    expect(merged.get("CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON")).toBe("n");
    expect(merged.get("CONFIG_ESP_TASK_WDT_EN")).toBe("y");
    expect(merged.get("CONFIG_ESP_TASK_WDT_PANIC")).toBe("y");
    expect(merged.get("CONFIG_PARTITION_TABLE_MD5")).toBe("y");
    expect(merged.get("CONFIG_APP_PROJECT_VER")).toBe(`"${version}"`);
    // With flash encryption every write must be 16-byte aligned in offset and length; the last
    // block of an image (a v1 signature adds 68 bytes) is not, and src/flash.ts does not pad it.
    expect(merged.get("CONFIG_SECURE_FLASH_ENC_ENABLED") ?? "n", "flash encryption needs padded writes in src/flash.ts first").not.toBe("y");
  });

  it("refuses subplatform targets, whose own SDKCONFIGPATH would replace sdkconfig/ (rollback off)", async () => {
    for (const target of ["esp32/wt32_eth01", "esp32/esp32s3"]) {
      const b = await buildEsp32({ moddable, outDir: join(outDir, "sub"), platform: target });
      expect(b.failed, target).toBe("mcconfig");
      expect(b.log, target).toMatch(/xsota builds with -p esp32 only/);
    }
  }, 60_000);

  it("fails at the step that breaks: a type error in a module, a missing include", async () => {
    const broken = mkdtempSync(join(tmpdir(), "xsota-esp32-broken-"));
    try {
      for (const p of ["manifest.json", "partitions.csv", "sdkconfig", "modules", "src"]) cpSync(join(REPO, p), join(broken, p), { recursive: true });
      const manifest = JSON.parse(readFileSync(join(broken, "manifest.json"), "utf8")) as { include: string[] };
      writeFileSync(join(broken, "manifest.json"), JSON.stringify({ ...manifest, include: [...manifest.include, "$(MODULES)/network/nosuch/manifest.json"] }));
      const missing = await buildEsp32({ moddable, outDir: join(broken, "out"), manifestDir: broken });
      expect(missing.failed).toBe("mcconfig");
      writeFileSync(join(broken, "manifest.json"), JSON.stringify(manifest));
      // a module that type-checks under Node's lib but not against the SDK's (no DOM, no Node globals)
      writeFileSync(join(broken, "src", "url.ts"), readFileSync(join(broken, "src", "url.ts"), "utf8") + "\nexport const nodeOnly: number = process.pid;\n");
      const typeError = await buildEsp32({ moddable, outDir: join(broken, "out"), manifestDir: broken, only: /\/src\/url\.xsb$/ });
      expect(typeError.failed).toBe("modules");
      expect(typeError.log).toMatch(/src\/url\.ts\(\d+,\d+\): error TS\d+: Cannot find name 'process'/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  }, 240_000);
});
