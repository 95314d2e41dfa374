/*
 * The ESP32 build with Moddable's own tools, up to the point that needs ESP-IDF (bench/moddable-esp32.ts):
 * mcconfig -p esp32 resolves an app's manifest.json and the component it includes (the repo's
 * manifest.json), the makefile's targets run mcconfig's tsc against the SDK's typings and xsc on
 * every module, xsl links mc.xs.c. Any error before the IDF fails here. Built: the reference app
 * (examples/device), an app outside the repo for esp32 and two boards, and mcconfig alone for
 * every plain-ESP32 board of the SDK.
 * Skipped, with the reason, when no Moddable tree with built host tools is found.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { REPO, buildEsp32, findModdable, isAgentModule, type Esp32Build, type ModdableTree } from "../../bench/moddable-esp32";
import { agentBytecode, featureApp, featureManifests, featureModules } from "../../bench/moddable-size";
import { writeOutsideApp } from "./outside-app";
import { buildComponent } from "../../backend/release/component";
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

/**
 * Device modules written but not yet part of the agent (no manifest maps them, nothing imports
 * them). Empty since the esp_encrypted_img decryption (issue 31) is in the download path
 * (enc-image, enc-kdf, enc-stream, enc-key, enc-slot) and src/crypto.ts's ciphers (enc-gcm).
 */
const NOT_YET_IN_THE_AGENT: string[] = [];

/** The component's modules as xsl names them: modules/x -> xsota/modules/x, src/x -> xsota/src/x. */
function localModules(): string[] {
  const names: string[] = [];
  for (const dir of ["modules", "modules/delta", "src"])
    for (const f of readdirSync(join(REPO, dir)))
      if (f.endsWith(".ts") && !f.endsWith(".d.ts") && !NOT_YET_IN_THE_AGENT.includes(`xsota/${dir}/${f.slice(0, -3)}`)) names.push(`xsota/${dir}/${f.slice(0, -3)}`);
  return names.concat("xsota", "xsota/platform", "xsota/src/native/esp32", "setup/xsota"); // src/component/{xsota,ports,setup}.ts
}

/** The preloads of the component's core (manifest.json), then those of its features (features/<name>/manifest.json). */
const componentPreload = (): string[] =>
  [join(REPO, "manifest.json"), ...featureManifests().map((f) => f.manifest)].flatMap((p) =>
    (JSON.parse(readFileSync(p, "utf8")) as { platforms: { esp32: { preload?: string[] } } }).platforms.esp32.preload ?? []);

/** Plain-ESP32 board subplatforms of the SDK (no ESP32_SUBCLASS, or "esp32"). */
function plainEsp32Boards(root: string): string[] {
  const dir = join(root, "build", "devices", "esp32", "targets");
  return readdirSync(dir).filter((b) => {
    try {
      const m = JSON.parse(readFileSync(join(dir, b, "manifest.json"), "utf8")) as { build?: { ESP32_SUBCLASS?: string } };
      return (m.build?.ESP32_SUBCLASS ?? "esp32") === "esp32";
    } catch {
      return false;
    }
  }).sort();
}

/** The user's app outside the repo (test/device/outside-app.ts), the same one test/moddable/app.test.ts updates on Linux. */
const outsideApp = (dir: string): string => writeOutsideApp(dir);

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
    const preloaded = componentPreload();
    expect(preloaded.slice(0, 2)).toEqual(["xsota", "setup/xsota"]);
    // the big ones whose module bodies only build tables are listed (docs/performance.md, the code-size row)
    for (const name of ["xsota/modules/errors", "xsota/modules/config", "xsota/modules/policy", "xsota/modules/delta/patch"]) expect(preloaded).toContain(name);
    for (const name of localModules()) {
      expect(linked.get(name), name).toBeDefined();
      if (preloaded.includes(name)) expect(linked.get(name)!.code, name).toBe(0);
      else expect(linked.get(name)!.code, name).toBeGreaterThan(0);
    }
    // and the ones not yet in the agent are not linked (once one is, it leaves NOT_YET_IN_THE_AGENT)
    for (const name of NOT_YET_IN_THE_AGENT) expect(linked.has(name), name).toBe(false);
    expect(linked.get("xsota/src/native/esp32")!.host).toBe(true);
    // the reference app preloads its main; the component its own list
    expect([...(build.preload?.modules ?? [])].sort()).toEqual([...preloaded].sort());
    // moddable-host lists the same modules (but those Linux replaces), so the tests run them as the devkit does
    const host = (JSON.parse(readFileSync(join(REPO, "moddable-host", "manifest.json"), "utf8")) as { preload: string[] }).preload;
    expect(preloaded.filter((m) => !["xsota", "setup/xsota", "xsota/src/flash", "xsota/src/system"].includes(m) && !host.includes(m))).toEqual([]);
    expect(build.preload!.inlineCode).toBeGreaterThan(500);
    // the agent's module objects (about 80 KB) are in the ROM heap, not built in RAM at boot
    expect(build.preload!.heapSlots * 16).toBeGreaterThan(50_000);
    // constant tables are frozen (modules/constant.ts), so xsl leaves none of ours aliasable in RAM;
    // the one cache it notes is semver's RegExp, made in RAM at the first parse on purpose
    expect(build.xslWarnings.filter((w) => /xsota[/:]/.test(w) && !/ semverRe: no const$/.test(w))).toEqual([]);
    expect(build.linked!.instances).toBeGreaterThan(0);
  }, 240_000);

  it("hands ESP-IDF the reference app's partition table and an sdkconfig with rollback, validation and the version", () => {
    const proj = join(build.tmpDir, "xsProj-esp32");
    expect(readFileSync(join(proj, "partitions.csv"), "utf8")).toBe(readFileSync(join(REPO, "partitions.csv"), "utf8"));
    const makefile = readFileSync(join(build.tmpDir, "makefile"), "utf8");
    expect(resolve(/^SDKCONFIGPATH = (.+)$/m.exec(makefile)?.[1] ?? "")).toBe(join(REPO, "sdkconfig"));
    expect(makefile).toMatch(/^EXPECTED_ESP_IDF = v6\.0$/m);
    const merged = lastAssignments(readFileSync(join(proj, "sdkconfig.mc"), "utf8"));
    const version = (JSON.parse(readFileSync(join(REPO, "examples", "device", "manifest.json"), "utf8")) as { config: { version: string } }).config.version;
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

  it("builds an app outside the repo with the component for esp32 and two boards: its own name and main, xsota's modules under xsota specifiers", async () => {
    const app = outsideApp(outDir);
    for (const target of ["esp32", "esp32/nodemcu", "esp32/wt32_eth01"]) {
      const b = await buildEsp32({ moddable, outDir: join(outDir, "app", target.replace("/", "-")), manifestDir: app, platform: target });
      expect(b.ok, `${target}: ${b.failed} failed:\n${b.log.slice(-3000)}`).toBe(true);
      expect(b.tmpDir.endsWith("/blinky"), target).toBe(true);
      const makefile = readFileSync(join(b.tmpDir, "makefile"), "utf8");
      expect(makefile, target).toMatch(/^NAME = blinky$/m);
      // the app's own partitions: Moddable's factory table, split into two OTA slots and otadata (defines.ota.autosplit)
      const rows = readFileSync(join(b.tmpDir, "xsProj-esp32", "partitions.csv"), "utf8");
      expect(rows, target).toMatch(/^ota_0, app, ota_0,/m);
      expect(rows, target).toMatch(/^ota_1, app, ota_1,/m);
      expect(rows, target).toMatch(/^otadata, data, ota,/m);
      const names = b.scripts.map((s) => s.name);
      expect(names, target).toContain("main");
      expect(names, target).toContain("agent");
      const agentModules = names.filter(isAgentModule);
      for (const m of localModules()) expect(agentModules, `${target}: ${m}`).toContain(m);
      // nothing of the component under a generic specifier
      expect(names.filter((n) => /^(modules|src)\//.test(n)), target).toEqual([]);
      expect(b.preload!.modules.filter((m) => !isAgentModule(m)), target).toEqual([]);
    }
  }, 600_000);

  it("builds a JavaScript app with no TypeScript step against the component `xsota component` compiles; a TypeScript app type-checks against its .d.ts", async () => {
    const component = join(outDir, "xsota-js");
    const built = buildComponent(REPO, component);
    expect(built.manifests).toEqual(["manifest.json", "features/control/manifest.json", "features/delta/manifest.json", "features/fleet/manifest.json"]);
    const app = writeOutsideApp(join(outDir, "js"), "blinky", component);
    const b = await buildEsp32({ moddable, outDir: join(outDir, "js", "out"), manifestDir: app });
    expect(b.ok, `${b.failed} failed:\n${b.log.slice(-3000)}`).toBe(true);
    const makefile = readFileSync(join(b.tmpDir, "makefile"), "utf8");
    // mcconfig writes a tsc rule (and a per-module tsconfig) for each TypeScript module it is given: none
    expect(makefile).not.toMatch(/typescript compile failure/);
    expect(makefile).not.toMatch(/\.ts\b(?!config)/);
    const names = b.scripts.map((s) => s.name);
    for (const m of localModules()) expect(names, m).toContain(m);
    expect(names).toContain("main");
    // the same bytecode as the TypeScript build, module by module (tsc's output either way)
    if (build?.ok) {
      const ts = new Map(build.scripts.map((s) => [s.name, s.code]));
      for (const s of b.scripts.filter((s) => isAgentModule(s.name))) expect(s.code, s.name).toBe(ts.get(s.name));
    }

    // a TypeScript app: its main type-checks against the component's .d.ts (a misuse of the API fails, named)
    const tsApp = join(outDir, "ts-app");
    mkdirSync(tsApp, { recursive: true });
    writeFileSync(join(tsApp, "manifest.json"), JSON.stringify({
      include: ["$(MODDABLE)/examples/manifest_base.json", "$(MODDABLE)/examples/manifest_net.json", join(component, "manifest.json")],
      modules: { "*": "./main" },
    }));
    const main = (options: string) => [
      'import OTA, { type SelfTest, type OTAEvent } from "xsota";',
      'const sensor: SelfTest = { name: "sensor", run: () => true };',
      `const ota = new OTA(${options});`,
      "ota.start();",
      'const version: string = ota.running?.version ?? "none";',
      'trace(`${version} ${ota.state}\\n`);',
      "",
    ].join("\n");
    writeFileSync(join(tsApp, "main.ts"), main("{ checks: [sensor], onEvent: (e: OTAEvent) => trace(`${e.state}\\n`) }"));
    const good = await buildEsp32({ moddable, outDir: join(tsApp, "out"), manifestDir: tsApp, only: /\/main\.xsb$/ });
    expect(good.ok, `${good.failed} failed:\n${good.log.slice(-3000)}`).toBe(true);
    writeFileSync(join(tsApp, "main.ts"), main("{ checks: [sensor], rebootWhen: 5 }"));
    const bad = await buildEsp32({ moddable, outDir: join(tsApp, "out"), manifestDir: tsApp, only: /\/main\.xsb$/ });
    expect(bad.failed).toBe("modules");
    expect(bad.log).toMatch(/main\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type '\(\) => boolean'/);
  }, 480_000);

  it("links none of the features' modules in an app that includes only the core (modules/features.ts), and builds", async () => {
    const features = featureModules();
    expect([...features.keys()].sort()).toEqual(["control", "delta", "fleet"]);
    const app = featureApp(join(outDir, "core-only"), []);
    const b = await buildEsp32({ moddable, outDir: join(outDir, "core-only", "out"), manifestDir: app });
    expect(b.ok, `${b.failed} failed:\n${b.log.slice(-3000)}`).toBe(true);
    const names = b.scripts.map((s) => s.name);
    for (const [feature, modules] of features) {
      expect(modules.length, feature).toBeGreaterThan(0);
      expect(names.filter((n) => modules.includes(n)), feature).toEqual([]);
      // the API's one import of the feature links the core's stub (null)
      expect(names, feature).toContain(`xsota/feature/${feature}`);
    }
    expect(names.filter((n) => /^xsota\/modules\/delta\//.test(n))).toEqual([]);
    expect(b.preload!.modules.filter((m) => !isAgentModule(m))).toEqual([]);
    // the reference app (the first test: the core and every feature) links more of the agent
    if (build?.ok) expect(agentBytecode(b)).toBeLessThan(agentBytecode(build));
    // the core's stubs are in no other link: the features' manifests drop them ("~")
    if (build?.ok) expect(readFileSync(join(build.tmpDir, "makefile"), "utf8")).not.toMatch(/src\/features\/no-/);
  }, 240_000);

  it("leaves the app buildable for Moddable's simulator (-p lin): there \"xsota\" is the stub, no agent module", async () => {
    const app = outsideApp(join(outDir, "sim"));
    const b = await buildEsp32({ moddable, outDir: join(outDir, "sim-out"), manifestDir: app, platform: "lin", mcconfigOnly: true });
    expect(b.ok, b.log.slice(-2000)).toBe(true);
    const makefile = readFileSync(join(b.tmpDir, "makefile"), "utf8");
    expect(makefile).toMatch(/src\/component\/stub\.ts/);
    expect(makefile).not.toMatch(/modules\/agent\.ts/);
  }, 120_000);

  it("resolves the component with mcconfig for every plain-ESP32 board of the SDK", async () => {
    const app = outsideApp(join(outDir, "boards"));
    const boards = plainEsp32Boards(moddable.root);
    expect(boards.length).toBeGreaterThan(20);
    const failed: string[] = [];
    const unresolved: string[] = [];
    for (const board of boards) {
      const b = await buildEsp32({ moddable, outDir: join(outDir, "boards", board), manifestDir: app, platform: `esp32/${board}`, mcconfigOnly: true });
      const errors = b.log.split("\n").filter((l) => /### Error/.test(l));
      // ../shared/moddable leaves the SDK's examples/assets out (shared/MODDABLE-SDK.md): boards whose
      // own manifest names a sound from there do not resolve in this copy, with or without xsota
      if (!b.ok && errors.length && errors.every((l) => /\$\(MODDABLE\)\/examples\/assets\/.*directory not found/.test(l))) unresolved.push(board);
      else if (!b.ok) failed.push(`${board}: ${errors.slice(0, 2).join(" / ") || b.log.slice(-300)}`);
    }
    expect(failed).toEqual([]);
    if (unresolved.length) process.stderr.write(`[esp32-build] boards that do not resolve in this SDK copy (examples/assets left out): ${unresolved.join(", ")}\n`);
    expect(boards.length - unresolved.length).toBeGreaterThan(20);
  }, 600_000);

  it("fails at the step that breaks: a type error in a module, a missing include", async () => {
    const broken = mkdtempSync(join(tmpdir(), "xsota-esp32-broken-"));
    try {
      for (const p of ["manifest.json", "partitions.csv", "sdkconfig", "modules", "src", "features", "examples"]) cpSync(join(REPO, p), join(broken, p), { recursive: true });
      const appDir = join(broken, "examples", "device");
      const manifest = JSON.parse(readFileSync(join(appDir, "manifest.json"), "utf8")) as { include: string[] };
      writeFileSync(join(appDir, "manifest.json"), JSON.stringify({ ...manifest, include: [...manifest.include, "$(MODULES)/network/nosuch/manifest.json"] }));
      const missing = await buildEsp32({ moddable, outDir: join(broken, "out"), manifestDir: appDir });
      expect(missing.failed).toBe("mcconfig");
      writeFileSync(join(appDir, "manifest.json"), JSON.stringify(manifest));
      // a module that type-checks under Node's lib but not against the SDK's (no DOM, no Node globals)
      writeFileSync(join(broken, "src", "url.ts"), readFileSync(join(broken, "src", "url.ts"), "utf8") + "\nexport const nodeOnly: number = process.pid;\n");
      const typeError = await buildEsp32({ moddable, outDir: join(broken, "out"), manifestDir: appDir, only: /\/src\/url\.xsb$/ });
      expect(typeError.failed).toBe("modules");
      expect(typeError.log).toMatch(/src\/url\.ts\(\d+,\d+\): error TS\d+: Cannot find name 'process'/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  }, 240_000);
});
