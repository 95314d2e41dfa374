/*
 * "xsota/platform" on Moddable's runtime for Linux, for an app built with the component
 * (host-sim/engines/moddable/build.ts buildAppProgram, run with --app): the ports the API
 * (src/component/xsota.ts) starts the agent on. The devkit's bindings (src/http.ts, src/crypto.ts,
 * src/store.ts, src/clock.ts, src/mqtt.ts) with the flash file and the boot description of
 * moddable-host/main.ts; the harness (app.ts) reads their counters to know when nothing is left.
 * In a folder of its own: a file the "xsota/moddable-host/*" wildcard also maps would be one
 * module under two names (mcconfig keeps the first). Imports are "xsota/...": XS resolves relative
 * ones from the module's name.
 */
import { File } from "file";
import type { Ports, StorePort, StoreValue } from "xsota/modules/ports";
import { EspHttp } from "xsota/src/http";
import { ModdableCrypto } from "xsota/src/crypto";
import { PreferenceStore } from "xsota/src/store";
import { ModdableClock } from "xsota/src/clock";
import { EspMqtt } from "xsota/src/mqtt";
import { FileFlashPort } from "xsota/moddable-host/flash";
import { HostSystem, type HostSystemOptions } from "xsota/moddable-host/system";
import { args, write } from "xsota/moddable-host/native";
import { CountedClock, CountedHttp } from "xsota/moddable-host/counted";

/** What src/component/ports.ts takes on the devkit (the CA comes from config.xsota.ca there as here). */
export interface DevicePortsOptions {
  ca: ArrayBuffer;
  mqttCa?: ArrayBuffer;
  mqtt: boolean;
  hardware?: string;
}

export interface BootDescription extends HostSystemOptions {
  config: Record<string, unknown>;
  behavior?: string;
  ca: string;
  mqttCa?: string;
}

function option(argv: string[], name: string): string {
  const at = argv.indexOf(name);
  const value = at >= 0 ? argv[at + 1] : undefined;
  if (value === undefined) throw new Error(`missing ${name}`);
  return value;
}

/** The driver's BOOT.json (--boot). */
export function bootDescription(): BootDescription {
  const file = new File(option(args(), "--boot"));
  const boot = JSON.parse(file.read(String)) as BootDescription;
  file.close();
  return boot;
}

/**
 * NVS as the devkit's, and each audit event the outbox stores (key "e<seq>" of its domain) written
 * as an "@event" line: the driver follows the app's agent as it follows the simulator's firmware.
 */
class WatchedStore implements StorePort {
  constructor(private readonly store: StorePort) {}
  get(domain: string, key: string): StoreValue | undefined {
    return this.store.get(domain, key);
  }
  set(domain: string, key: string, value: StoreValue): void {
    this.store.set(domain, key, value);
    if (/outbox$/.test(domain) && /^e\d+$/.test(key) && typeof value === "string") write(`@event ${value}\n`);
  }
  delete(domain: string, key: string): void {
    this.store.delete(domain, key);
  }
  keys(domain: string): string[] {
    return this.store.keys(domain);
  }
}

/** The ports of the last createDevicePorts: the harness polls them. */
export const harness: { clock?: CountedClock; http?: CountedHttp } = {};

export function createDevicePorts(options: DevicePortsOptions): Ports {
  const argv = args();
  const boot = bootDescription();
  const clock = new ModdableClock();
  const counted = new CountedClock(clock);
  const http = new CountedHttp(new EspHttp({ ca: options.ca }), clock, false);
  harness.clock = counted;
  harness.http = http;
  const ports: Ports = {
    flash: new FileFlashPort(option(argv, "--flash"), Number(option(argv, "--slot"))),
    store: new WatchedStore(new PreferenceStore()),
    http,
    crypto: new ModdableCrypto(),
    clock: counted,
    system: new HostSystem({ deviceId: boot.deviceId, hardware: options.hardware ?? boot.hardware, chipId: boot.chipId, resetReason: boot.resetReason }),
  };
  if (options.mqtt) ports.mqtt = new EspMqtt({ ca: options.mqttCa ?? options.ca });
  return ports;
}

/**
 * The simulated bootloader the driver boots this program with (host-sim/chip/bootloader.ts) runs without
 * CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK: the agent keeps the manifest's floor (config antiRollback "manifest").
 */
export function buildAntiRollback(): boolean {
  return false;
}
