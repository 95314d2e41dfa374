/*
 * The sdkconfig.h an ESP32 app is compiled with, from the sdkconfig files mcconfig merges, without
 * ESP-IDF's Python tools: enough to run src/native/xsota_sdkconfig_check.h through a C preprocessor
 * for any board (test/device/sdkconfig-guard.test.ts).
 *
 *  1. mcconfigMerge: the text mcconfig writes as xsProj-esp32/sdkconfig.mc and hands idf.py as
 *     SDKCONFIG_DEFAULTS (tools/mcmanifest.js generateConfigurationRules, Moddable SDK 8.2.3), with
 *     its quirks: only entries the base has are replaced in place (an "=n" then becomes "="),
 *     the rest are appended; "#" lines of the layers are dropped.
 *     mcconfigLayers: which files, in which order, for a debug / release / instrumented build.
 *  2. readDefaults: kconfgen's reading of that file: "# CONFIG_X is not set" is X=n, the last
 *     assignment wins, old names are renamed (the components' sdkconfig.rename files), and an
 *     assignment that is not y/n to a bool ("CONFIG_X=" from step 1) is ignored (Kconfig then
 *     falls back to an earlier assignment or the default).
 *  3. resolveKconfig: the Kconfig rules (type, default, depends on, select, choice) of the symbols
 *     the check header reads (ESP_IDF_V6_GUARDED, read in ESP-IDF v6.0's Kconfig files); any other
 *     symbol is taken as written, typed by its value.
 *  4. sdkconfigH: the header kconfgen writes (esp-idf-kconfig's C header format): bool y ->
 *     "#define CONFIG_X 1", n or unset -> absent, int and hex -> the number as written, string ->
 *     the quoted string; target symbols that idf.py adds (CONFIG_IDF_TARGET...) first.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

// ---------------------------------------------------------------------------------------------
// 1. mcconfig's merge

export type BuildKind = "debug" | "release" | "instrument";

/**
 * The files generateConfigurationRules merges over xsProj-<subclass>/sdkconfig.defaults, in order:
 * the base's .release (and .inst) for a release (instrumented) build, then SDKCONFIGPATH's
 * sdkconfig.defaults, .release, .inst, unless SDKCONFIGPATH is the base directory itself.
 */
export function mcconfigLayers(baseDir: string, sdkconfigPath: string | undefined, kind: BuildKind): string[] {
  const files: string[] = [];
  if (kind !== "debug") {
    files.push(join(baseDir, "sdkconfig.defaults.release"));
    if (kind === "instrument") files.push(join(baseDir, "sdkconfig.inst"));
  }
  if (sdkconfigPath && resolve(sdkconfigPath) !== resolve(baseDir)) {
    const app = join(sdkconfigPath, "sdkconfig.defaults");
    if (existsSync(app)) files.push(app);
    if (kind !== "debug" && existsSync(app + ".release")) files.push(app + ".release");
    if (kind === "instrument" && existsSync(join(sdkconfigPath, "sdkconfig.inst"))) files.push(join(sdkconfigPath, "sdkconfig.inst"));
  }
  return files;
}

/** generateConfigurationRules' "Merge differences" loop, statement for statement. */
export function mcconfigMerge(base: string, layers: string[]): string {
  let baseConfig = base;
  const baseConfigLength = baseConfig.length; // the loop bound mcconfig keeps from before any change
  const mergedConfig = layers.flatMap((text) => text.split(/[\r\n]+/gm));
  let appended = false;
  for (const option of mergedConfig) {
    if (!option.length || option.charAt(0) === "#") continue;
    const parts = option.split("=");
    const name = parts[0]!;
    let value = `${parts[1]}`;
    let start = baseConfig.indexOf(name + "=");
    if (start !== -1) {
      start += name.length + 1;
      let end = start;
      let c = baseConfig.charAt(end);
      while (c !== "\n" && c !== "\r") {
        if (++end >= baseConfigLength) break;
        c = baseConfig.charAt(end);
      }
      const original = baseConfig.slice(start, end);
      if (original !== value) {
        if (value === "n") value = "";
        baseConfig = baseConfig.replace(new RegExp(name + "=.*"), name + "=" + value);
      }
    } else {
      if (!appended) {
        baseConfig += "\n";
        appended = true;
      }
      baseConfig += name + "=" + value + "\n";
    }
  }
  return baseConfig;
}

// ---------------------------------------------------------------------------------------------
// 2. kconfgen's reading of a defaults file

/** Old name -> new name ("!" in a rename file: the bool is inverted). */
export type Renames = Map<string, { name: string; inverted: boolean }>;

/** The sdkconfig.rename and sdkconfig.rename.<target> files of ESP-IDF's components. */
export function idfRenames(idfDir: string, target = "esp32"): Renames {
  const out: Renames = new Map();
  const components = join(idfDir, "components");
  if (!existsSync(components)) return out;
  for (const c of readdirSync(components))
    for (const f of ["sdkconfig.rename", `sdkconfig.rename.${target}`]) {
      const p = join(components, c, f);
      if (!existsSync(p)) continue;
      for (const raw of readFileSync(p, "utf8").split(/\r?\n/)) {
        const line = raw.trim();
        if (!line || line.startsWith("#")) continue;
        const [from, to] = line.split(/\s+/);
        if (!from || !to) continue;
        const inverted = to.startsWith("!");
        out.set(from, { name: inverted ? to.slice(1) : to, inverted });
      }
    }
  return out;
}

/** A defaults file as kconfgen reads it: name -> raw value ("n" for "# CONFIG_X is not set"). */
export function readDefaults(text: string, renames: Renames = new Map()): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    let name: string, value: string;
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) [name, value] = [unset[1]!, "n"];
    else {
      const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
      if (!m) continue;
      [name, value] = [m[1]!, m[2]!];
    }
    const renamed = renames.get(name);
    if (renamed) {
      name = renamed.name;
      if (renamed.inverted && (value === "y" || value === "n")) value = value === "y" ? "n" : "y";
    }
    // "CONFIG_X=" is no value of any type, and a bool takes only y or n (kconfiglib checks the
    // first character): such an assignment is ignored, an earlier one (or the default) stands
    if (value === "" || (looksBool(out.get(name)) && !/^[yn]/.test(value))) continue;
    out.delete(name); // the map's order is the order of the last assignments (a choice's last y wins)
    out.set(name, value);
  }
  return out;
}

const looksBool = (v: string | undefined) => v === "y" || v === "n";

// ---------------------------------------------------------------------------------------------
// 3. the Kconfig rules of the guarded symbols

export interface KconfigSymbol {
  type: "bool" | "int" | "hex" | "string";
  /** Default when not assigned (or assigned where its dependencies are off): a value, or a function of the others. */
  default?: string | ((v: Map<string, string>) => string | undefined);
  /** All must be y ("!X": X must not be y). */
  dependsOn?: string[];
  /** Symbols this one sets to y when it is y. */
  selects?: string[];
}

export interface KconfigChoice {
  members: string[];
  default: string;
}

export interface KconfigModel {
  symbols: Record<string, KconfigSymbol>;
  choices: KconfigChoice[];
}

/**
 * ESP-IDF v6.0's rules for what src/native/xsota_sdkconfig_check.h reads (names without CONFIG_).
 * esp_system/Kconfig: ESP_TASK_WDT_EN (default y), _INIT (depends on _EN, default y), _PANIC
 * (depends on _INIT, default n), _TIMEOUT_S (depends on _INIT, default 5); the ESP_SYSTEM_PANIC
 * choice (default PRINT_REBOOT; GDBSTUB depends on ESP_GDBSTUB_ENABLED, a hidden option of
 * esp_gdbstub, default y on the ESP32). partition_table/Kconfig.projbuild: PARTITION_TABLE_MD5
 * (default y, depends on !APP_COMPATIBLE_PRE_V3_1_BOOTLOADERS). The bootloader component's
 * Kconfig.projbuild (not in ../shared/esp-idf): BOOTLOADER_APP_ROLLBACK_ENABLE, the two
 * SKIP_VALIDATE options (default n; _ALWAYS selects _ON_POWER_ON) and SECURE_FLASH_ENC_ENABLED
 * (default n), BOOTLOADER_APP_ANTI_ROLLBACK (default n, depends on BOOTLOADER_APP_ROLLBACK_ENABLE) with
 * BOOTLOADER_APP_SECURE_VERSION (default 0) and BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD (default 32
 * on the ESP32), both depending on it. esp_app_format/Kconfig.projbuild: APP_PROJECT_VER_FROM_CONFIG (default n).
 */
export const ESP_IDF_V6_GUARDED: KconfigModel = {
  symbols: {
    BOOTLOADER_APP_ROLLBACK_ENABLE: { type: "bool", default: "n" },
    BOOTLOADER_SKIP_VALIDATE_ALWAYS: { type: "bool", default: "n", dependsOn: ["!SECURE_BOOT"], selects: ["BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON"] },
    BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON: { type: "bool", default: "n", dependsOn: ["!SECURE_BOOT"] },
    ESP_TASK_WDT_EN: { type: "bool", default: "y" },
    ESP_TASK_WDT_INIT: { type: "bool", default: "y", dependsOn: ["ESP_TASK_WDT_EN"] },
    ESP_TASK_WDT_PANIC: { type: "bool", default: "n", dependsOn: ["ESP_TASK_WDT_INIT"] },
    ESP_TASK_WDT_TIMEOUT_S: { type: "int", default: "5", dependsOn: ["ESP_TASK_WDT_INIT"] },
    ESP_GDBSTUB_ENABLED: { type: "bool", default: "y" },
    ESP_SYSTEM_PANIC_GDBSTUB: { type: "bool", dependsOn: ["ESP_GDBSTUB_ENABLED"] },
    PARTITION_TABLE_MD5: { type: "bool", default: "y", dependsOn: ["!APP_COMPATIBLE_PRE_V3_1_BOOTLOADERS"] },
    APP_PROJECT_VER_FROM_CONFIG: { type: "bool", default: "n" },
    APP_PROJECT_VER: { type: "string", default: '"1"', dependsOn: ["APP_PROJECT_VER_FROM_CONFIG"] },
    SECURE_FLASH_ENC_ENABLED: { type: "bool", default: "n" },
    // bootloader Kconfig.projbuild: anti-rollback needs rollback; its two numbers exist only with it
    BOOTLOADER_APP_ANTI_ROLLBACK: { type: "bool", default: "n", dependsOn: ["BOOTLOADER_APP_ROLLBACK_ENABLE"] },
    BOOTLOADER_APP_SECURE_VERSION: { type: "int", default: "0", dependsOn: ["BOOTLOADER_APP_ANTI_ROLLBACK"] },
    BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD: { type: "int", default: "32", dependsOn: ["BOOTLOADER_APP_ANTI_ROLLBACK"] },
  },
  choices: [
    {
      members: ["ESP_SYSTEM_PANIC_PRINT_HALT", "ESP_SYSTEM_PANIC_PRINT_REBOOT", "ESP_SYSTEM_PANIC_SILENT_REBOOT", "ESP_SYSTEM_PANIC_GDBSTUB"],
      default: "ESP_SYSTEM_PANIC_PRINT_REBOOT",
    },
  ],
};

/**
 * The final values (name -> y/n/number/"string", names with CONFIG_) kconfgen would settle on for
 * the assignments, under the model's rules; other symbols as assigned.
 */
export function resolveKconfig(assigned: Map<string, string>, model: KconfigModel = ESP_IDF_V6_GUARDED): Map<string, string> {
  const out = new Map(assigned);
  const get = (n: string) => out.get(`CONFIG_${n}`);
  const on = (n: string) => get(n) === "y";
  const met = (s: KconfigSymbol) => (s.dependsOn ?? []).every((d) => (d.startsWith("!") ? !on(d.slice(1)) : on(d)));
  // in Kconfig's order: a symbol's dependencies are declared (and settled) before it
  const order = Object.keys(model.symbols);
  for (const name of order) {
    const sym = model.symbols[name]!;
    const key = `CONFIG_${name}`;
    const member = model.choices.find((c) => c.members.includes(name));
    if (member) continue; // settled with its choice below
    if (!met(sym)) {
      out.delete(key);
      continue;
    }
    if (!out.has(key)) {
      const d = typeof sym.default === "function" ? sym.default(out) : sym.default;
      if (d !== undefined) out.set(key, d);
    }
  }
  for (const name of order) {
    const sym = model.symbols[name]!;
    if (out.get(`CONFIG_${name}`) === "y") for (const s of sym.selects ?? []) out.set(`CONFIG_${s}`, "y");
  }
  for (const choice of model.choices) {
    const visible = choice.members.filter((m) => !model.symbols[m] || met(model.symbols[m]!));
    // the last member assigned y wins (kconfiglib: a choice symbol set to y becomes the user selection)
    let selected: string | undefined;
    let lastAt = -1;
    const keys = [...assigned.keys()];
    for (const m of visible) {
      const at = keys.indexOf(`CONFIG_${m}`);
      if (assigned.get(`CONFIG_${m}`) === "y" && at > lastAt) [selected, lastAt] = [m, at];
    }
    selected ??= visible.includes(choice.default) ? choice.default : visible[0];
    for (const m of choice.members) out.set(`CONFIG_${m}`, m === selected ? "y" : "n");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. the header

export interface TargetSymbols {
  /** IDF_TARGET (default "esp32"). */
  target?: string;
  /** IDF_FIRMWARE_CHIP_ID (default 0x0000, the ESP32's). */
  chipId?: string;
}

/** esp-idf-kconfig's C header for the values (names with CONFIG_). */
export function sdkconfigH(values: Map<string, string>, target: TargetSymbols = {}): string {
  const t = target.target ?? "esp32";
  const lines = [
    "/*",
    " * Automatically generated file. DO NOT EDIT.",
    " * Espressif IoT Development Framework (ESP-IDF) 6.0.0 Configuration Header",
    " */",
    "#pragma once",
    `#define CONFIG_IDF_TARGET "${t}"`,
    `#define CONFIG_IDF_TARGET_${t.toUpperCase()} 1`,
    `#define CONFIG_IDF_FIRMWARE_CHIP_ID ${target.chipId ?? "0x0000"}`,
  ];
  for (const [name, value] of values) {
    if (!/^CONFIG_\w+$/.test(name) || /^CONFIG_IDF_(TARGET|FIRMWARE_CHIP_ID)/.test(name)) continue;
    if (value === "n" || value === "") continue;
    if (value === "y") lines.push(`#define ${name} 1`);
    else if (/^"(?:[^"\\]|\\.)*"$/.test(value)) lines.push(`#define ${name} ${value}`);
    else if (/^-?\d+$/.test(value) || /^0x[0-9a-f]+$/i.test(value)) lines.push(`#define ${name} ${value}`);
    else lines.push(`#define ${name} ${JSON.stringify(value)}`); // an unquoted string value: kconfgen quotes it
  }
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// boards

export interface Board {
  /** The name after esp32/ (the targets/ directory). */
  name: string;
  /** ESP32_SUBCLASS after the board's includes ("esp32" when none sets it). */
  subclass: string;
  /** SDKCONFIGPATH after the board's includes, resolved; undefined when none sets it. */
  sdkconfigPath?: string;
}

/**
 * A board subplatform's build variables as mcconfig's parseManifest settles them: its own "build"
 * first, then each included manifest's (so an include overrides the includer); "./" is the
 * manifest's directory, $(MODDABLE) the SDK. Only includes of other board manifests can set these
 * two (none of $(MODULES) does), so only those are followed.
 */
export function boardOf(moddable: string, name: string): Board {
  const env: Record<string, string> = {};
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const dir = resolve(path, "..");
    const m = JSON.parse(readFileSync(path, "utf8")) as { build?: Record<string, unknown>; include?: string | string[] };
    for (const [key, v] of Object.entries(m.build ?? {})) {
      const k = key.replace(/ \?=$/, ""); // "X ?=": only when not set yet (the shell's value aside)
      if (typeof v !== "string" || (k !== "SDKCONFIGPATH" && k !== "ESP32_SUBCLASS") || (k !== key && k in env)) continue;
      let value = v.replaceAll("$(MODDABLE)", moddable);
      if (value === "." || value.startsWith("./")) value = join(dir, value);
      env[k] = value;
    }
    for (const inc of typeof m.include === "string" ? [m.include] : (m.include ?? [])) {
      const p = inc.replaceAll("$(MODDABLE)", moddable);
      if (/^\.\.?\//.test(p) || p.startsWith(join(moddable, "build", "devices"))) {
        const abs = resolve(dir, p);
        if (existsSync(abs)) visit(abs);
      }
    }
  };
  visit(join(moddable, "build", "devices", "esp32", "targets", name, "manifest.json"));
  return { name, subclass: env.ESP32_SUBCLASS ?? "esp32", sdkconfigPath: env.SDKCONFIGPATH };
}

/** Every board subplatform of build/devices/esp32/targets. */
export function esp32Boards(moddable: string): Board[] {
  const targets = join(moddable, "build", "devices", "esp32", "targets");
  return readdirSync(targets)
    .filter((n) => existsSync(join(targets, n, "manifest.json")))
    .sort()
    .map((n) => boardOf(moddable, n));
}

/**
 * The sdkconfig.h of an ESP32 app: Moddable's xsProj-esp32 base, the layers of SDKCONFIGPATH for
 * the build kind, then `extra` (text appended to SDKCONFIGPATH's sdkconfig.defaults, as the README
 * tells a board's user to do with the project's lines).
 */
export function appSdkconfigH(opts: { moddable: string; idf: string; sdkconfigPath?: string; kind: BuildKind; extra?: string }): {
  merged: string;
  values: Map<string, string>;
  header: string;
} {
  const baseDir = join(opts.moddable, "build", "devices", "esp32", "xsProj-esp32");
  const files = mcconfigLayers(baseDir, opts.sdkconfigPath, opts.kind);
  const layers = files.map((f) => readFileSync(f, "utf8"));
  if (opts.extra !== undefined) {
    // the extra lines belong to SDKCONFIGPATH's sdkconfig.defaults: after it, before its .release/.inst
    const at = opts.sdkconfigPath ? files.indexOf(join(opts.sdkconfigPath, "sdkconfig.defaults")) : -1;
    layers.splice(at >= 0 ? at + 1 : layers.length, 0, opts.extra);
  }
  const merged = mcconfigMerge(readFileSync(join(baseDir, "sdkconfig.defaults"), "utf8"), layers);
  const values = resolveKconfig(readDefaults(merged, idfRenames(opts.idf)));
  return { merged, values, header: sdkconfigH(values) };
}
