/*
 * A protocol-level device for controller tests: the real reporter, outbox and eligibility over
 * real MQTT, with an agent that "installs" instantly (SimDevice covers the real install path in
 * fleet-sim tests). A device whose `bad` flag is set rolls back, like failing diagnostics.
 */
import { startReporter, type Reporter, type ReporterAgent } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { parseConfig, type AppConfig } from "../../modules/config";
import { verifyManifest } from "../../modules/manifest";
import { keyFromConfig } from "../../modules/keys";
import { checkEligibility } from "../../modules/eligibility";
import { compareSemver } from "../../modules/semver";
import { codeOf } from "../../modules/errors";
import type { AuditEvent } from "../../modules/events";
import { TcpMqttPort } from "../../backend/mqtt/client";
import type { VirtualClock } from "../../backend/clock";
import type { KeyConfigInput } from "../../modules/keys";
import { MemStore, devicePorts, fleetCrypto as nodeCrypto } from "./helpers";

export interface ScriptedOptions {
  id: string;
  hardware: string;
  groups: string[];
  region?: string;
  bad?: boolean;
  window?: { startMinute: number; endMinute: number };
}

export class ScriptedDevice implements ReporterAgent {
  running = { version: "1.0.0", secureVersion: 1, slot: 0, project: "thermo" };
  readonly store = new MemStore();
  readonly config: AppConfig;
  outbox: Outbox;
  reporter: Reporter;
  mqtt: TcpMqttPort;

  constructor(readonly o: ScriptedOptions, readonly clock: VirtualClock, broker: { host: string; port: number }, key: KeyConfigInput) {
    const cfg: Record<string, unknown> = {
      product: "thermo", channel: "stable", manifestUrl: "https://127.0.0.1:1/m.json", trustedKeys: [key], hardware: o.hardware,
      groups: o.groups, checkIntervalMs: 0, mqtt: { host: broker.host, port: broker.port },
    };
    if (o.region) cfg.region = o.region;
    if (o.window) cfg.maintenanceWindow = o.window;
    this.config = parseConfig(cfg);
    this.outbox = new Outbox(this.store, { capacity: 64 });
    this.mqtt = new TcpMqttPort({ clock });
    this.reporter = startReporter(devicePorts(o.id, clock, this.store, this.mqtt), this.config, this, this.outbox);
  }

  private emit(e: Omit<AuditEvent, "seq" | "time" | "uptime" | "from">): void {
    const ev = this.outbox.append({ time: this.clock.wallTime(), uptime: this.clock.now(), from: this.running.version, ...e });
    this.reporter.onEvent(ev);
  }

  async check(options: { force?: boolean; manifest?: Uint8Array } = {}): Promise<unknown> {
    if (!options.manifest) return {};
    let m;
    try {
      m = verifyManifest(options.manifest, this.config.trustedKeys.map((k) => keyFromConfig(k, nodeCrypto)), nodeCrypto).manifest;
    } catch (e) {
      this.emit({ state: "refused", code: codeOf(e) });
      return {};
    }
    const rollout = m.rollout?.id;
    const base = rollout ? { to: m.version, rollout } : { to: m.version };
    if (compareSemver(m.version, this.running.version) <= 0) return {};
    const eff = options.force ? { ...m, force: true } : m;
    const code = checkEligibility(eff, { id: this.o.id, hardware: this.o.hardware, groups: this.o.groups, ...(this.o.region ? { region: this.o.region } : {}) },
      this.clock.wallTime(), this.config.maintenanceWindow, nodeCrypto);
    if (code) {
      this.emit({ state: "refused", code, ...base });
      return {};
    }
    this.emit({ state: "downloading", progress: 0, ...base });
    this.emit({ state: "installing", ...base });
    await new Promise<void>((r) => this.clock.setTimeout(r, 5_000));
    if (this.o.bad) {
      this.emit({ state: "rolled-back", code: "CONFIRM_DIAGNOSTICS", ...base });
    } else {
      this.running = { ...this.running, version: m.version, slot: 1 - this.running.slot };
      this.emit({ state: "committed", ...base });
      this.reporter.close();
      this.reporter = startReporter(devicePorts(this.o.id, this.clock, this.store, this.mqtt), this.config, this, this.outbox);
    }
    return {};
  }

  close(): void {
    this.reporter.close();
  }
}
