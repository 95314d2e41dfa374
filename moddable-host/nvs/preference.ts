/*
 * "preference" for the Linux program: the SDK's modules/files/preference/lin/preference.js without
 * its in-RAM copy. The SDK's Linux module keeps the whole store as JavaScript objects for the life
 * of the process; on the ESP32, preference is NVS (modPreference.c) and every value stays in flash
 * until it is asked for. With that copy, `--memory` counted the journal, the outbox's events and
 * every key as the agent's RAM (about 2 KB during a download, measured with --census). Here each
 * call reads the file and drops what it parsed, as the chip reads NVS.
 *
 * Same file (<mc/config file.root>modpreferences.json: { domain: { key: value } }, an ArrayBuffer
 * as { buffer: "1,2,3" }) and the same behaviour otherwise, for host-sim/engines/moddable/driver.ts to read:
 * like the SDK's module, an unreadable file reads as empty and save() rewrites it whole.
 */
import { File } from "file";
import config from "mc/config";

type Stored = string | number | boolean | { buffer: string };
type All = Record<string, Record<string, Stored> | undefined>;

function path(): string {
  return (config as unknown as { file: { root: string } }).file.root + "modpreferences.json";
}

function load(): All {
  try {
    if (!File.exists(path())) return {};
    const file = new File(path(), false);
    const text = file.read(String) as string;
    file.close();
    return JSON.parse(text) as All;
  } catch {
    return {}; // as the SDK's module
  }
}

function save(all: All): void {
  try {
    File.delete(path());
    const file = new File(path(), true);
    file.write(JSON.stringify(all));
    file.close();
  } catch {
    // as the SDK's module
  }
}

export default class Preference {
  static set(domain: string, key: string, value: string | number | boolean | ArrayBuffer): void {
    const all = load();
    const d = (all[domain] ??= {});
    d[key] = value instanceof ArrayBuffer ? { buffer: new Uint8Array(value).toString() } : value;
    save(all);
  }

  static get(domain: string, key: string): string | number | boolean | ArrayBuffer | undefined {
    const v = load()[domain]?.[key];
    if (v !== undefined && typeof v === "object") return v.buffer === "" ? new ArrayBuffer(0) : Uint8Array.from(v.buffer.split(",").map(Number)).buffer;
    return v;
  }

  static delete(domain: string, key: string): void {
    const all = load();
    const d = all[domain];
    if (d?.[key] === undefined) return;
    delete d[key];
    if (Object.keys(d).length === 0) delete all[domain];
    save(all);
  }

  static keys(domain: string): string[] {
    const d = load()[domain];
    return d ? Object.keys(d) : [];
  }
}
