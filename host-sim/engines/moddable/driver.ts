/*
 * One device on Moddable's own runtime (moddable-host/, built for x-cli-lin): the Node side.
 * It plays what SimDevice plays for the node and xs engines, with processes instead of boots:
 *   load the flash file -> the simulator's bootloader model (host-sim/chip/bootloader.ts) picks the
 *   slot and moves otadata, saved back -> start the program on that file and slot -> read its
 *   "@event"/"@progress" lines -> its exit is the reset: 64 restart, 70 panic, 0 nothing left to do.
 * "crash-on-boot" and "hang" images are modelled here as SimDevice does (no process runs).
 * NVS is Moddable's preference for Linux: <nvs dir>/modpreferences.json.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ResetReason, StorePort, StoreValue } from "../../../modules/ports";
import type { AuditEvent } from "../../../modules/events";
import { SimChip } from "../../chip/chip";
import { boot as bootloaderBoot } from "../../chip/bootloader";
import { EVENT_PREFIX, PROGRESS_PREFIX } from "../firmware";
import type { BootRecord, Behavior } from "../../chip/device";

export const RESTART_STATUS = 64, PANIC_STATUS = 70;

export interface ModdableDeviceOptions {
  program: string;
  flashPath: string;
  /** Where the program's preference file lives (default `<flash>.nvs`). */
  nvsDir?: string;
  config: unknown;
  /** PEM of the CA pinned for the update host (and the broker unless mqttCaPem). */
  caPem: string;
  mqttCaPem?: string;
  deviceId: string;
  hardware: string;
  chipId?: number;
  /** The bootloader built with CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (host-sim/chip/bootloader.ts; default off). */
  antiRollback?: boolean;
  /** Real ms one boot may take before it counts as hung and is killed (a watchdog reset). */
  bootTimeoutMs?: number;
  maxBoots?: number;
  /** Extra program arguments on every boot (the bench's --timing, --memory). */
  programArgs?: string[];
  onEvent?(e: AuditEvent): void;
  onProgress?(written: number, total: number): void;
  onLog?(line: string): void;
  onBoot?(info: BootRecord): void;
}

export function derBase64(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("no certificate in the CA PEM");
  return m[1]!.replace(/\s+/g, "");
}

/** The program's modpreferences.json (modules/files/preference/lin/preference.js) as a read-only StorePort. */
export class PreferenceFile implements StorePort {
  private cache: Record<string, Record<string, unknown>>;
  constructor(path: string) {
    this.cache = existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, Record<string, unknown>>) : {};
  }
  get(domain: string, key: string): StoreValue | undefined {
    const v = this.cache[domain]?.[key];
    if (v && typeof v === "object") return Uint8Array.from(String((v as { buffer: string }).buffer).split(",").map(Number)).buffer;
    return v as StoreValue | undefined;
  }
  set(): void {
    throw new Error("read-only");
  }
  delete(): void {
    throw new Error("read-only");
  }
  keys(domain: string): string[] {
    return Object.keys(this.cache[domain] ?? {});
  }
}

export class ModdableDevice {
  readonly events: AuditEvent[] = [];
  readonly logs: string[] = [];
  readonly bootRecords: BootRecord[] = [];
  readonly counters = { boots: 0, restarts: 0, panics: 0, watchdogs: 0, powerCuts: 0 };
  readonly flashOps = 0; // the program's flash operations are not counted
  bricked: string | undefined;
  private reason: ResetReason = "power-on";
  readonly nvsDir: string;

  constructor(private readonly o: ModdableDeviceOptions) {
    this.nvsDir = o.nvsDir ?? `${o.flashPath}.nvs`;
  }

  get chip(): SimChip {
    return SimChip.load(this.o.flashPath);
  }

  get running(): BootRecord | undefined {
    return this.bricked ? undefined : this.bootRecords[this.bootRecords.length - 1];
  }

  /** NVS as the program left it. */
  store(): StorePort {
    return new PreferenceFile(join(this.nvsDir, "modpreferences.json"));
  }

  /** Pull the plug: the next run() boots with reset reason power-on. */
  powerCycle(): void {
    this.reason = "power-on";
  }

  /** Boot until a boot ends with nothing left to do (or the device is bricked, or maxBoots). */
  async run(): Promise<void> {
    mkdirSync(this.nvsDir, { recursive: true });
    const maxBoots = this.o.maxBoots ?? 12;
    for (let n = 0; n < maxBoots; n++) {
      const chip = SimChip.load(this.o.flashPath);
      const result = bootloaderBoot(chip, { chipId: this.o.chipId ?? 0, antiRollback: this.o.antiRollback ?? false });
      chip.save(this.o.flashPath);
      this.counters.boots++;
      if (result.kind === "bricked") {
        this.bricked = result.reason;
        return;
      }
      const record: BootRecord = { n: this.counters.boots, slot: result.slot, version: result.appDesc.version, behavior: result.behavior as Behavior, reason: this.reason };
      this.bootRecords.push(record);
      this.o.onBoot?.(record);
      if (record.behavior === "crash-on-boot") {
        this.counters.panics++;
        this.reason = "panic";
        continue;
      }
      if (record.behavior === "hang") {
        this.counters.watchdogs++;
        this.reason = "watchdog";
        continue;
      }
      const status = await this.bootOnce(record);
      if (status === RESTART_STATUS) {
        this.counters.restarts++;
        this.reason = "software";
      } else if (status === PANIC_STATUS) {
        this.counters.panics++;
        this.reason = "panic";
      } else if (status === "hung") {
        this.counters.watchdogs++;
        this.reason = "watchdog";
      } else if (status === 0) {
        this.reason = "power-on";
        return;
      } else {
        throw new Error(`the Moddable program ended with status ${status}: ${this.logs.slice(-5).join(" | ")}`);
      }
    }
  }

  private bootOnce(record: BootRecord): Promise<number | "hung"> {
    const bootFile = join(this.nvsDir, "boot.json");
    writeFileSync(bootFile, JSON.stringify({
      config: this.o.config, behavior: record.behavior,
      ca: derBase64(this.o.caPem), ...(this.o.mqttCaPem ? { mqttCa: derBase64(this.o.mqttCaPem) } : {}),
      deviceId: this.o.deviceId, hardware: this.o.hardware, chipId: this.o.chipId ?? 0, resetReason: record.reason,
    }));
    const child = spawn(this.o.program, ["--boot", bootFile, "--flash", this.o.flashPath, "--slot", String(record.slot), "--nvs", this.nvsDir, ...(this.o.programArgs ?? [])], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let rest = "";
    const line = (text: string) => {
      this.logs.push(text);
      if (text.startsWith(EVENT_PREFIX)) {
        const e = JSON.parse(text.slice(EVENT_PREFIX.length)) as AuditEvent;
        this.events.push(e);
        this.o.onEvent?.(e);
      } else if (text.startsWith(PROGRESS_PREFIX)) {
        const [w, t] = text.slice(PROGRESS_PREFIX.length).split(" ").map(Number);
        this.o.onProgress?.(w!, t!);
      } else this.o.onLog?.(text);
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const l of lines) line(l);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      for (const l of chunk.split("\n")) if (l) this.logs.push(`stderr: ${l}`);
    });
    return new Promise((resolve, reject) => {
      let hung = false;
      const timer = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, this.o.bootTimeoutMs ?? 120_000);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        // A crash (SIGSEGV in XS) says so in the logs the error quotes, not only "status -1".
        if (signal && !hung) this.logs.push(`the program was killed by ${signal}`);
        if (rest) line(rest);
        resolve(hung ? "hung" : (code ?? -1));
      });
    });
  }
}
