/*
 * One boot of the agent on Moddable's own runtime for Linux (x-cli-lin): the third binding of
 * modules/ports.ts, beside src/ (ESP32) and host-sim/ (simulated). It runs the simulator's
 * firmware main (host-sim/engines/firmware.ts: modules/app.ts plus the test image's behaviour) through
 * the devkit's own bindings: src/http.ts (http over securesocket, the pinned CA), src/crypto.ts
 * (crypt), src/store.ts (preference), src/clock.ts (time, timer), src/mqtt.ts (mqtt). Only flash
 * and system facts are Linux's: moddable-host/flash.ts, moddable-host/system.ts.
 *
 * Usage: xsota-moddable --boot BOOT.json --flash FLASH.bin --slot N --nvs DIR [--timing] [--memory]
 *        xsota-moddable --app --boot BOOT.json --flash FLASH.bin --slot N --nvs DIR   (an app built with
 *          the component by host-sim/engines/moddable/build.ts buildAppProgram: its main instead of the firmware)
 *        xsota-moddable --boot BOOT.json --nvs DIR --raw URL [--memory]   (the bench's raw download)
 *        xsota-moddable --boot BOOT.json --nvs DIR --mqtt HOST:PORT   (one MQTT connection over TLS: "@mqtt \"ready\"" or the close reason)
 *        xsota-moddable --idle [--memory]   (host.c runs moddable-host/idle instead: the app without the agent)
 * --timing: "@time request URL MS" per request and "@time restart MS" (ticks); --memory: a GC and
 * a sample every 20 ms (moddable-host/memory.ts), "@memory {json}" before the process ends;
 * --census with --memory: what the live memory is made of at each state's peak (memory.ts).
 * BOOT.json (written by host-sim/engines/moddable/driver.ts): { config, behavior, ca, mqttCa?, deviceId,
 * hardware, chipId, resetReason, rawCa? }, ca and mqttCa as base64 DER, rawCa (--raw, --mqtt: the
 * request's or connection's own anchors, HttpRequestOptions.ca, MqttConnectOptions.ca) as PEM.
 * stdout: the firmware's log lines ("@event ", "@progress "...), then "@idle" when nothing is
 * left to do. Exit status: 0 idle, 64 restart (the driver boots again), 70 panic.
 */
import { File } from "file";
import Timer from "timer";
import type { Ports } from "../modules/ports";
import { fromBase64 } from "../modules/bytes";
import { codeOf } from "../modules/errors";
import { firmwareWith, type FirmwareHandle } from "../host-sim/engines/firmware-core";
// the features as the component's API takes them: by include (manifest.json maps the real ones;
// host-sim/engines/moddable/build.ts coreManifest maps the core's stubs, which load none of their modules)
import fleet from "xsota/feature/fleet";
import delta from "xsota/feature/delta";
import control from "xsota/feature/control";
import type { FirmwareBoot } from "../host-sim/engines/engine";
import { EspHttp } from "../src/http";
import { ModdableCrypto } from "../src/crypto";
import { PreferenceStore } from "../src/store";
import { ModdableClock } from "../src/clock";
import { EspMqtt } from "../src/mqtt";
import { FileFlashPort } from "./flash";
import { HostSystem, IDLE_STATUS, PANIC_STATUS, type HostSystemOptions } from "./system";
import { args, exit, write } from "./native";
import { mqttProbe, rawDownload } from "./bench";
import { MemorySampler } from "./memory";
import { CountedClock, CountedHttp } from "./counted";
import { runApp } from "./app";

interface BootFile extends FirmwareBoot, HostSystemOptions {
  ca: string;
  mqttCa?: string;
  /** --raw only: PEM (one or more certificates) the download names as its own trust anchors (HttpRequestOptions.ca). */
  rawCa?: string;
}

/** Idle = no agent timer and no request in flight for this many consecutive 100 ms polls. */
const QUIET_POLLS = 3;

function option(argv: string[], name: string): string {
  const at = argv.indexOf(name);
  const value = at >= 0 ? argv[at + 1] : undefined;
  if (value === undefined) throw new Error(`missing ${name}`);
  return value;
}

function der(b64: string): ArrayBuffer {
  return fromBase64(b64).slice().buffer as ArrayBuffer;
}

/** Real ms between memory samples (each a full GC) with --memory. */
const SAMPLE_MS = 20;

export default function main(): void {
  let firmware: FirmwareHandle | undefined;
  try {
    const argv = args();
    if (argv.includes("--app")) return runApp();
    const sampler = argv.includes("--memory") ? new MemorySampler(SAMPLE_MS, argv.includes("--census")) : undefined;
    const leave = (status: number) => {
      if (sampler) write(`@memory ${JSON.stringify(sampler.sample())}\n`);
      exit(status);
    };
    const file = new File(option(argv, "--boot"));
    const boot = JSON.parse(file.read(String)) as BootFile;
    file.close();
    const clock = new ModdableClock();
    const timing = argv.includes("--timing");
    const rawAt = argv.indexOf("--raw");
    if (rawAt >= 0) {
      rawDownload(option(argv, "--raw"), new EspHttp({ ca: der(boot.ca) }), new ModdableCrypto(), clock, (r) => {
        write(`@raw ${JSON.stringify(r)}\n`);
        leave(r.error ? PANIC_STATUS : IDLE_STATUS);
      }, boot.rawCa);
      return;
    }
    if (argv.includes("--mqtt")) {
      const [host, port] = option(argv, "--mqtt").split(":");
      mqttProbe(new EspMqtt({ ca: der(boot.mqttCa ?? boot.ca) }), host!, Number(port), boot.rawCa, (result) => {
        write(`@mqtt ${JSON.stringify(result)}\n`);
        leave(result === "ready" ? IDLE_STATUS : PANIC_STATUS);
      });
      return;
    }
    const system = new HostSystem({ deviceId: boot.deviceId, hardware: boot.hardware, chipId: boot.chipId, resetReason: boot.resetReason }, () => {
      if (timing) write(`@time restart ${clock.now()}\n`);
      if (sampler) write(`@memory ${JSON.stringify(sampler.sample())}\n`);
    }, sampler && ((line) => {
      // "@event {...,"state":"downloading",...}": the samples from here on are that state's
      const at = line.startsWith("@event ") ? line.indexOf('"state":"') : -1;
      if (at >= 0) sampler.phase(line.slice(at + 9, line.indexOf('"', at + 9)));
    }));
    const countedClock = new CountedClock(clock);
    const countedHttp = new CountedHttp(new EspHttp({ ca: der(boot.ca) }), clock, timing);
    const busy = () => countedClock.pending() || countedHttp.requests > 0;
    const ports: Ports = {
      flash: new FileFlashPort(option(argv, "--flash"), Number(option(argv, "--slot"))),
      store: new PreferenceStore(),
      http: countedHttp,
      crypto: new ModdableCrypto(),
      clock: countedClock,
      system,
    };
    // As src/ports.ts does on the devkit: a broker port only when the configuration names a broker
    // (each EspMqtt holds its own copy of the CA's DER).
    if ((boot.config as { mqtt?: unknown } | null)?.mqtt !== undefined) ports.mqtt = new EspMqtt({ ca: der(boot.mqttCa ?? boot.ca) });
    firmware = firmwareWith({ fleet, delta, control })(ports, { config: boot.config, behavior: boot.behavior });
    const app = firmware.app;
    let quiet = 0, leaving = false;
    Timer.repeat(() => {
      quiet = busy() ? 0 : quiet + 1;
      if (quiet < QUIET_POLLS || leaving) return;
      leaving = true;
      // As before a restart: the outbox's last events get a bounded chance to reach the broker.
      const drain = app?.agent.beforeRestart ? app.agent.beforeRestart() : Promise.resolve();
      drain.catch(() => undefined).then(() => {
        write("@idle\n");
        leave(IDLE_STATUS);
      });
    }, 100);
  } catch (e) {
    write(`@panic ${codeOf(e)} ${String(e)}\n`);
    exit(PANIC_STATUS);
  }
}
