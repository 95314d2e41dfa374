/*
 * The simulated firmware's main: what a test image "is" when the simulated bootloader boots
 * it. XS-safe (bundled into the XS engine too): imports only modules/ and types. It takes the
 * agent's optional features from its caller (firmwareWith), as the device's API takes them by
 * include: host-sim/engines/firmware.ts binds all of them for the Node and XS engines; moddable-host
 * takes them through the "xsota/feature/..." specifiers, so a program built with the core's
 * stubs loads none of their modules (the bench's core-only RAM).
 *
 * Behaviours (embedded in the image by xsota image build, carried by FirmwareBoot):
 * - "healthy": the application (modules/app.ts) with its built-in diagnostics.
 * - "fail-diagnostics": the same plus an application check that fails, so the self-test rolls back.
 * - "crash-on-boot", "hang": handled by SimDevice on the Node side, identically for every
 *   engine: a crash resets the chip (panic) before the app can confirm; a hang never runs the
 *   app and the simulated task watchdog resets it. If called anyway, this firmware does nothing.
 *
 * Configuration in layers, as on the device (modules/provision.ts): the image's config is the
 * manifest's defaults, the chip's NVS ("xsota.dev", e.g. written by `xsota provision`) the
 * device's own values over them; a provisioned id replaces the MAC. A bad provisioned value
 * leaves the app not started (logged), like a bad configuration on the device.
 *
 * The network: FirmwareBoot.networkUpMs (SimDevice's networkUpMs) says when this boot's network
 * comes up; the firmware calls App.networkUp() then, as an app that brings up its own network
 * would (a no-op unless diagnostics.waitForNetwork).
 *
 * The simulated application's job: config "simApp": {"busyUntilMs": N} keeps it busy until N ms
 * of uptime, and its rebootWhen (modules/app.ts) says no until then.
 *
 * Sim-only needs go through the SystemPort's log, which every engine bridges: lines starting
 * with "@event " carry an AuditEvent as JSON, "@progress <written> <total>" the download
 * progress. SimDevice turns them into its event list and progress callbacks.
 */
import type { Ports } from "../../modules/ports";
import type { FirmwareBoot } from "./engine";
import { start, type App } from "../../modules/app";
import type { Features } from "../../modules/features";
import type { DiagnosticCheck } from "../../modules/diagnostics";
import type { AgentObserver, AuditEvent } from "../../modules/events";
import { layerConfig, readProvisioned, withDeviceId } from "../../modules/provision";
import { codeOf } from "../../modules/errors";

export const EVENT_PREFIX = "@event ";
export const PROGRESS_PREFIX = "@progress ";

/** The simulator's observer: events and progress as log lines (a class: its methods stay in flash on Moddable). */
class LogObserver implements AgentObserver {
  private lastPct = -1;
  constructor(private readonly ports: Ports) {}
  onEvent(e: AuditEvent): void {
    this.ports.system.log(EVENT_PREFIX + JSON.stringify(e));
  }
  onProgress(written: number, total: number): void {
    const pct = Math.floor((written * 100) / total);
    if (pct === this.lastPct) return;
    this.lastPct = pct;
    this.ports.system.log(`${PROGRESS_PREFIX}${written} ${total}`);
  }
}

export interface FirmwareHandle {
  app?: App;
  close(): void;
}

export type BootFirmware = (devicePorts: Ports, boot: FirmwareBoot) => FirmwareHandle;

/** The firmware's main with these features (null: not included). */
export const firmwareWith = (features: Features): BootFirmware => (devicePorts, boot) => bootWith(features, devicePorts, boot);

function bootWith(features: Features, devicePorts: Ports, boot: FirmwareBoot): FirmwareHandle {
  if (boot.behavior === "crash-on-boot" || boot.behavior === "hang") return { close() {} };
  let ports = devicePorts;
  let config: unknown = boot.config;
  try {
    const provisioned = readProvisioned(ports.store);
    if (Object.keys(provisioned).length > 0) {
      config = layerConfig(boot.config, provisioned);
      if (provisioned.deviceId !== undefined) ports = { ...ports, system: withDeviceId(ports.system, provisioned.deviceId) };
    }
  } catch (e) {
    ports.system.log(`not started: ${codeOf(e)} ${e instanceof Error ? e.message : String(e)}`);
    return { close() {} };
  }
  const checks: DiagnosticCheck[] = [];
  const failsHere = boot.behavior === "fail-diagnostics" || boot.behavior === `fail-diagnostics@${ports.system.hardwareRevision()}`;
  if (failsHere) checks.push({ name: "app-selftest", run: () => false });
  const sim = (boot.config as { simApp?: { busyUntilMs?: unknown } } | null)?.simApp;
  const busyUntil = typeof sim?.busyUntilMs === "number" ? sim.busyUntilMs : undefined;
  const app = start(ports, config, {
    checks,
    ...(busyUntil !== undefined ? { rebootWhen: () => ports.clock.now() >= busyUntil } : {}),
    observer: new LogObserver(ports),
    features,
  });
  app.booted.catch((e: unknown) => ports.system.log(`boot failed: ${e instanceof Error ? e.message : String(e)}`));
  const upMs = boot.networkUpMs;
  if (upMs === undefined) app.networkUp();
  else if (upMs >= 0) ports.clock.setTimeout(() => app.networkUp(), upMs);
  return { app, close: () => app.close() };
}
