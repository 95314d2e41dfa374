/*
 * src/native/xsota_sdkconfig_check.h, run through a C preprocessor with the sdkconfig.h ESP-IDF
 * would generate (host-sim/chip/chip/sdkconfig-h.ts) for:
 *  - the project's sdkconfig/ merged over Moddable's xsProj-esp32 base (debug, release, -i builds): passes;
 *  - the same with each option the agent relies on turned off: fails with an #error naming it;
 *  - every plain-ESP32 board subplatform (build/devices/esp32/targets/*, ESP32_SUBCLASS esp32 after
 *    its includes) with its own SDKCONFIGPATH files and the project's lines merged on top, as the
 *    README's board notes say: passes; without the project's lines: fails, on the options listed
 *    (XSOTA_BOARD_TABLE=1 prints the table).
 * The compiler: $XSOTA_CC, else out/xtensa-esp32-elf's gcc, else the host's cc/gcc/clang (the
 * header is plain preprocessor). Skipped, with the reason, without one or without Moddable's source.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { REPO } from "../../bench/moddable-esp32";
import {
  appSdkconfigH, boardOf, esp32Boards, mcconfigMerge, readDefaults, resolveKconfig, sdkconfigH, type BuildKind,
} from "../../host-sim/chip/sdkconfig-h";

const NATIVE = join(REPO, "src", "native");
const PROJECT = join(REPO, "sdkconfig");
const projectLines = () => readFileSync(join(PROJECT, "sdkconfig.defaults"), "utf8");

// only the SDK's source is read (xsProj-esp32, targets/*): the read-only source first, since
// out/moddable may be a copy still under way (test/moddable/setup.ts)
const MODDABLE = [process.env.MODDABLE, resolve(REPO, "..", "shared", "moddable"), join(REPO, "out", "moddable")].find(
  (p) => p && existsSync(join(p, "build", "devices", "esp32", "xsProj-esp32", "sdkconfig.defaults.release")) && existsSync(join(p, "build", "devices", "esp32", "targets", "nodemcu")),
);
// the sdkconfig.rename files (old option names a board may use); a full ESP-IDF works too
const IDF = [process.env.XSOTA_ESP_IDF, resolve(REPO, "..", "shared", "esp-idf"), process.env.IDF_PATH].find((p) => p && existsSync(join(p, "components"))) ?? "";

function findCompiler(): string | undefined {
  const candidates = [process.env.XSOTA_CC, join(REPO, "out", "xtensa-esp32-elf", "bin", "xtensa-esp32-elf-gcc"), "cc", "gcc", "clang"];
  for (const c of candidates) if (c && spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0) return c;
  return undefined;
}
const CC = findCompiler();
const skip = !MODDABLE ? "no Moddable SDK source ($MODDABLE, out/moddable or ../shared/moddable)" : !CC ? "no C compiler (XSOTA_CC, out/xtensa-esp32-elf, cc, gcc, clang)" : undefined;
if (skip) console.warn(`test/device/sdkconfig-guard skipped: ${skip}`);

const work = mkdtempSync(join(tmpdir(), "xsota-sdkconfig-guard-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The #error messages the header gives under this sdkconfig.h (none: it passes); boards without their own sdkconfig share one. */
const guarded = new Map<string, string[]>();
function guard(header: string): string[] {
  if (!guarded.has(header)) guarded.set(header, compile(header));
  return guarded.get(header)!;
}
function compile(header: string): string[] {
  writeFileSync(join(work, "sdkconfig.h"), header);
  writeFileSync(join(work, "check.c"), '#include "sdkconfig.h"\n#include "xsota_sdkconfig_check.h"\n');
  const r = spawnSync(CC!, ["-fsyntax-only", "-I", work, "-I", NATIVE, join(work, "check.c")], { encoding: "utf8" });
  const errors = [...r.stderr.matchAll(/error: #error "(.*)"$/gm)].map((m) => m[1]!);
  if (r.status !== 0 && errors.length === 0) throw new Error(`${CC} failed without an #error:\n${r.stderr}`);
  if (r.status === 0 && errors.length) throw new Error(`${CC} passed with #errors:\n${r.stderr}`);
  return errors;
}
/** The options the #errors name ("xsota needs CONFIG_X=..."). */
const named = (errors: string[]) => errors.map((e) => /^xsota needs (CONFIG_\w+)=/.exec(e)?.[1] ?? e);

const header = (opts: { sdkconfigPath?: string; kind: BuildKind; extra?: string }) =>
  appSdkconfigH({ moddable: MODDABLE!, idf: IDF, ...opts });

/**
 * The project's sdkconfig.defaults with the line for `name` replaced by `line` (appended when it has
 * none); for a member of the panic choice, the project's panic lines replaced by `line`.
 */
function edited(name: string, line: string): string {
  let text = projectLines();
  if (name.startsWith("CONFIG_ESP_SYSTEM_PANIC_")) text = text.replace(/^CONFIG_ESP_SYSTEM_PANIC_.*$/gm, "");
  const re = new RegExp(`^${name}=.*$`, "m");
  return re.test(text) ? text.replace(re, line) : `${text}\n${line}\n`;
}

describe("sdkconfig.h as ESP-IDF's kconfgen writes it (host-sim/chip/sdkconfig-h.ts)", () => {
  it("writes bools as 1 or nothing, numbers as written and strings quoted", () => {
    const values = resolveKconfig(readDefaults('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=30\nCONFIG_D=0x8000\nCONFIG_E="1.0.0"\nCONFIG_F=n\n'), { symbols: {}, choices: [] });
    const h = sdkconfigH(values);
    expect(h).toMatch(/^#pragma once$/m);
    expect(h).toMatch(/^#define CONFIG_IDF_TARGET "esp32"$/m);
    expect(h).toMatch(/^#define CONFIG_IDF_TARGET_ESP32 1$/m);
    expect(h.split("\n").filter((l) => /CONFIG_[A-F]\b/.test(l))).toEqual([
      "#define CONFIG_A 1", "#define CONFIG_C 30", "#define CONFIG_D 0x8000", '#define CONFIG_E "1.0.0"',
    ]);
  });

  it("reads defaults as Kconfig does: last wins, an empty value is ignored, renames apply, a choice takes its last y", () => {
    const renames = new Map([["CONFIG_ESP32_PANIC_GDBSTUB", { name: "CONFIG_ESP_SYSTEM_PANIC_GDBSTUB", inverted: false }]]);
    const read = readDefaults("# CONFIG_X is not set\nCONFIG_X=y\nCONFIG_Y=y\nCONFIG_Y=\nCONFIG_ESP32_PANIC_GDBSTUB=y\n", renames);
    expect(read.get("CONFIG_X")).toBe("y");
    expect(read.get("CONFIG_Y")).toBe("y");
    expect(read.get("CONFIG_ESP_SYSTEM_PANIC_GDBSTUB")).toBe("y");
    const v = resolveKconfig(readDefaults("CONFIG_ESP_SYSTEM_PANIC_GDBSTUB=y\nCONFIG_ESP_SYSTEM_PANIC_PRINT_REBOOT=y\nCONFIG_ESP_TASK_WDT_EN=n\nCONFIG_ESP_TASK_WDT_PANIC=y\n"));
    expect(v.get("CONFIG_ESP_SYSTEM_PANIC_PRINT_REBOOT")).toBe("y");
    expect(v.get("CONFIG_ESP_SYSTEM_PANIC_GDBSTUB")).toBe("n");
    expect(v.has("CONFIG_ESP_TASK_WDT_PANIC")).toBe(false); // depends on _INIT, which depends on _EN
  });

  it("merges as mcconfig does: an entry of the base is replaced in place (=n becomes =), a new one appended", () => {
    const merged = mcconfigMerge("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=1\n", ["CONFIG_A=n\nCONFIG_B=y\n# comment\nCONFIG_C=2\nCONFIG_D=n\n"]);
    expect(merged).toBe("CONFIG_A=\n# CONFIG_B is not set\nCONFIG_C=2\n\nCONFIG_B=y\nCONFIG_D=n\n");
  });

  it("finds a board's SDKCONFIGPATH and ESP32_SUBCLASS through its includes", { skip: !MODDABLE }, () => {
    expect(boardOf(MODDABLE!, "wt32_eth01")).toEqual({ name: "wt32_eth01", subclass: "esp32", sdkconfigPath: join(MODDABLE!, "build/devices/esp32/targets/wt32_eth01/sdkconfig") });
    expect(boardOf(MODDABLE!, "m5stack_core2").sdkconfigPath).toBe(join(MODDABLE!, "build/devices/esp32/targets/m5stack_core2/sdkconfig"));
    expect(boardOf(MODDABLE!, "nodemcu")).toEqual({ name: "nodemcu", subclass: "esp32", sdkconfigPath: undefined });
    expect(boardOf(MODDABLE!, "saola_wrover").subclass).toBe("esp32s2"); // from ../saola_wroom/manifest.json
    expect(boardOf(MODDABLE!, "moddable_display_2").subclass).toBe("esp32");
  });
});

describe.skipIf(skip !== undefined)(`src/native/xsota_sdkconfig_check.h with ${CC ?? "(no compiler)"}`, () => {
  it("is included by xsota_esp32.c right after sdkconfig.h", () => {
    const includes = [...readFileSync(join(NATIVE, "xsota_esp32.c"), "utf8").matchAll(/^#include "([^"]+)"/gm)].map((m) => m[1]);
    expect(includes.indexOf("xsota_sdkconfig_check.h")).toBe(includes.indexOf("sdkconfig.h") + 1);
  });

  it("passes with the project's sdkconfig over Moddable's base, for debug, release and instrumented builds", () => {
    for (const kind of ["debug", "release", "instrument"] as const) {
      const h = header({ sdkconfigPath: PROJECT, kind });
      expect(guard(h.header), kind).toEqual([]);
      expect(h.header).toMatch(/^#define CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE 1$/m);
      expect(h.header).toMatch(/^#define CONFIG_ESP_TASK_WDT_TIMEOUT_S 30$/m);
      expect(h.header).toMatch(/^#define CONFIG_ESP_SYSTEM_PANIC_PRINT_REBOOT 1$/m);
      expect(h.header).not.toMatch(/SKIP_VALIDATE|PANIC_GDBSTUB|PANIC_PRINT_HALT/);
      // reboots on a panic and on the task watchdog, with the interrupt watchdog on (issue 30, item 5)
      for (const on of ["CONFIG_ESP_TASK_WDT_EN", "CONFIG_ESP_TASK_WDT_INIT", "CONFIG_ESP_TASK_WDT_PANIC", "CONFIG_ESP_INT_WDT", "CONFIG_ESP_INT_WDT_CHECK_CPU1"]) {
        expect(h.header, `${kind} ${on}`).toMatch(new RegExp(`^#define ${on} 1$`, "m"));
      }
      expect(h.header, kind).toMatch(/^#define CONFIG_ESP_INT_WDT_TIMEOUT_MS 300$/m);
    }
    // the instrumented build is the one that merges Moddable's sdkconfig.inst (the GDB stub on panic)
    expect(header({ kind: "instrument" }).values.get("CONFIG_ESP_SYSTEM_PANIC_GDBSTUB")).toBe("y");
    expect(header({ sdkconfigPath: PROJECT, kind: "instrument" }).values.get("CONFIG_ESP_SYSTEM_PANIC_GDBSTUB")).not.toBe("y");
  });

  it("with sdkconfig/anti-rollback.defaults appended: ESP-IDF's anti-rollback on in every build mode, and the guard passes", () => {
    const fragment = readFileSync(join(PROJECT, "anti-rollback.defaults"), "utf8");
    for (const kind of ["debug", "release", "instrument"] as const) {
      const h = header({ sdkconfigPath: PROJECT, kind, extra: fragment });
      expect(guard(h.header), kind).toEqual([]);
      expect(h.header, kind).toMatch(/^#define CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK 1$/m);
      expect(h.header, kind).toMatch(/^#define CONFIG_BOOTLOADER_APP_SECURE_VERSION 0$/m);
      expect(h.header, kind).toMatch(/^#define CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD 32$/m);
      // without the fragment it stays off (images carry secure_version 0: the agent's floor is the manifest's)
      expect(header({ sdkconfigPath: PROJECT, kind }).header, kind).not.toMatch(/ANTI_ROLLBACK|APP_SECURE_VERSION/);
    }
    // a secure_version the eFuse field cannot hold stops the build
    const tooBig = header({ sdkconfigPath: PROJECT, kind: "release", extra: fragment + "CONFIG_BOOTLOADER_APP_SECURE_VERSION=33\n" });
    expect(guard(tooBig.header).join("\n")).toMatch(/CONFIG_BOOTLOADER_APP_SECURE_VERSION <= CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD/);
    // anti-rollback depends on rollback: without it kconfgen drops it
    const noRollback = header({ sdkconfigPath: PROJECT, kind: "debug", extra: fragment + "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=n\n" });
    expect(noRollback.header).not.toMatch(/CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK/);
  });

  it("fails with an #error naming each option the agent relies on, when the sdkconfig turns it off", () => {
    const cases: [name: string, line: string, expected: string[]][] = [
      ["CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE", "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=n", ["CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE"]],
      // _ALWAYS selects _ON_POWER_ON
      ["CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS", "CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS=y", ["CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS", "CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON"]],
      ["CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON", "CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON=y", ["CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON"]],
      ["CONFIG_ESP_TASK_WDT_EN", "CONFIG_ESP_TASK_WDT_EN=n", ["CONFIG_ESP_TASK_WDT_EN", "CONFIG_ESP_TASK_WDT_INIT", "CONFIG_ESP_TASK_WDT_PANIC"]],
      ["CONFIG_ESP_TASK_WDT_INIT", "CONFIG_ESP_TASK_WDT_INIT=n", ["CONFIG_ESP_TASK_WDT_INIT", "CONFIG_ESP_TASK_WDT_PANIC"]],
      ["CONFIG_ESP_TASK_WDT_PANIC", "CONFIG_ESP_TASK_WDT_PANIC=n", ["CONFIG_ESP_TASK_WDT_PANIC"]],
      ["CONFIG_ESP_TASK_WDT_TIMEOUT_S", "CONFIG_ESP_TASK_WDT_TIMEOUT_S=5", ["CONFIG_ESP_TASK_WDT_TIMEOUT_S"]],
      ["CONFIG_ESP_INT_WDT", "CONFIG_ESP_INT_WDT=n", ["CONFIG_ESP_INT_WDT"]],
      ["CONFIG_ESP_SYSTEM_PANIC_GDBSTUB", "CONFIG_ESP_SYSTEM_PANIC_GDBSTUB=y", ["CONFIG_ESP_SYSTEM_PANIC_GDBSTUB"]],
      ["CONFIG_ESP_SYSTEM_PANIC_PRINT_HALT", "CONFIG_ESP_SYSTEM_PANIC_PRINT_HALT=y", ["CONFIG_ESP_SYSTEM_PANIC_PRINT_HALT"]],
      ["CONFIG_PARTITION_TABLE_MD5", "CONFIG_PARTITION_TABLE_MD5=n", ["CONFIG_PARTITION_TABLE_MD5"]],
      ["CONFIG_APP_PROJECT_VER_FROM_CONFIG", "CONFIG_APP_PROJECT_VER_FROM_CONFIG=n", ["CONFIG_APP_PROJECT_VER_FROM_CONFIG"]],
      ["CONFIG_SECURE_FLASH_ENC_ENABLED", "CONFIG_SECURE_FLASH_ENC_ENABLED=y", ["CONFIG_SECURE_FLASH_ENC_ENABLED"]],
    ];
    for (const [name, line, expected] of cases) {
      // the edited file stands in for sdkconfig/ (the lines on top of Moddable's base, nothing else)
      const errors = guard(header({ kind: "release", extra: edited(name, line) }).header);
      expect(named(errors), line).toEqual(expected);
      for (const e of errors) expect(e, line).toMatch(/^xsota needs CONFIG_\w+=\S+ .*in the app's sdkconfig \(.+\)$/);
    }
    // the instrumented build's GDB stub (Moddable's sdkconfig.inst) is what the project's two panic lines undo
    const withoutPanicLines = projectLines().replace(/^CONFIG_ESP_SYSTEM_PANIC_.*$/gm, "");
    expect(named(guard(header({ kind: "instrument", extra: withoutPanicLines }).header))).toEqual(["CONFIG_ESP_SYSTEM_PANIC_GDBSTUB"]);
  });

  const boards = MODDABLE ? esp32Boards(MODDABLE).filter((b) => b.subclass === "esp32") : [];

  it("finds the plain-ESP32 boards, those with their own SDKCONFIGPATH among them", () => {
    const names = boards.map((b) => b.name);
    for (const n of ["nodemcu", "wt32_eth01", "m5stack", "m5stack_core2", "moddable_two", "ethernet_kit"]) expect(names).toContain(n);
    for (const n of ["esp32s3", "esp32c3", "saola_wrover", "m5stack_cores3"]) expect(names).not.toContain(n);
    expect(boards.filter((b) => b.sdkconfigPath).length).toBeGreaterThan(0);
  });

  it("passes for every plain-ESP32 board with the project's lines merged into its sdkconfig; without them it fails", () => {
    const table: string[] = [];
    for (const b of boards)
      for (const kind of ["debug", "release", "instrument"] as const) {
        // a board without its own SDKCONFIGPATH keeps the app's: the project's file itself
        const h = header({ sdkconfigPath: b.sdkconfigPath, kind, extra: projectLines() });
        expect(guard(h.header), `${b.name} ${kind}`).toEqual([]);
        if (kind !== "release") continue;
        const own = [...new Set(named(guard(header({ sdkconfigPath: b.sdkconfigPath, kind }).header)))];
        expect(own, b.name).toContain("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE");
        table.push(`| esp32/${b.name} | ${b.sdkconfigPath ? b.sdkconfigPath.replace(MODDABLE!, "$(MODDABLE)") : "(none: Moddable's base)"} | ${own.join(", ")} |`);
      }
    if (process.env.XSOTA_BOARD_TABLE) console.info(["| board | SDKCONFIGPATH | fails without the project's lines on |", "|---|---|---|", ...table].join("\n"));
  });
});
