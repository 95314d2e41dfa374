/*
 * The demo's fleet: the HTTPS update host serving the published tree, the embedded broker,
 * FLEET's controller and audit log, and N SimDevices (AGENT's) in one engine, all on one
 * VirtualClock. Watch windows and the 30 s self-test pass in virtual time while the bytes
 * (TLS, MQTT) are real on loopback.
 *
 * Devices require an espsecure-signed image (requireImageSignature) and trust only the demo's
 * key, for manifests and images alike.
 */
import { toBase64 } from "../../modules/bytes";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { dirname, join } from "node:path";
import { OtaError } from "../../modules/errors";
import type { AuditEvent } from "../../modules/events";
import { rolloutBucket } from "../../modules/eligibility";
import { VirtualClock } from "../../backend/clock";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { startUpdateHost, type UpdateHost } from "../../backend/update-host";
import { keyConfigOf } from "../../backend/release/keys";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { nodeCrypto } from "../../backend/crypto";
import type { Engine } from "../../host-sim/engines/engine";
import { SimDevice } from "../../host-sim/chip/device";
import { SimChip } from "../../host-sim/chip/chip";
import { writeImage } from "../../host-sim/lab/lab";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, type Thresholds } from "../../backend/fleet/controller";
import { CHANNEL, PRODUCT, type BuildServer } from "./build";

export const LATEST = `/products/${PRODUCT}/${CHANNEL}/latest.json`;

export interface DeviceSpec {
  id: string;
  hardware: string;
  region: string;
  groups: string[];
}

export interface DemoDevice extends DeviceSpec {
  sim: SimDevice;
  /** Bytes written / total of the download in progress (undefined when none). */
  download?: { written: number; total: number };
}

/** Run against services the user runs (xsota demo --update-url/--www/--ca, --broker). */
export interface External {
  /** An HTTPS host serving `www` at `url` (Range requests), its TLS chain pinned by `ca` (PEM). */
  update?: { url: string; www: string; ca: string };
  broker?: { host: string; port: number };
}

export interface DemoFleetOptions {
  external?: External;
  build: BuildServer;
  /** The engine every device runs in, made for the fleet's clock. */
  engine: (clock: VirtualClock) => Engine;
  specs: DeviceSpec[];
  factory: Uint8Array;
  thresholds: Partial<Thresholds>;
  maxRealMs: number;
  onEvent?(device: DemoDevice, e: AuditEvent): void;
}

const IN_PROGRESS: ReadonlySet<string> = new Set(["checking", "downloading", "verifying", "installing", "rebooting", "confirming"]);

/** The state a device's events leave it in: that of its last event other than "refused". */
function stateOf(events: readonly AuditEvent[]): string {
  for (let i = events.length - 1; i >= 0; i--) if (events[i]!.state !== "refused") return events[i]!.state;
  return "idle";
}

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DemoFleet {
  readonly clock = new VirtualClock();
  readonly devices: DemoDevice[] = [];
  /** The embedded update host and broker (absent when the user's own are used). */
  host: UpdateHost | undefined;
  broker: Broker | undefined;
  hostUrl = "";
  mqtt = { host: "", port: 0, url: "" };
  log!: AuditLog;
  controller!: FleetController;
  private mqtts: TcpMqttPort[] = [];
  private runs: Promise<void>[] = [];
  private stopped = false;
  private crashed: unknown;
  private closed = false;

  readonly engine: Engine;

  constructor(readonly o: DemoFleetOptions) {
    this.engine = o.engine(this.clock);
  }

  get manifestUrl(): string {
    return `${this.hostUrl}${LATEST}`;
  }

  /** The CA devices pin for the update host. */
  get ca(): string {
    return this.o.external?.update?.ca ?? this.o.build.ca.caCertPem;
  }

  /** Update host and broker: embedded, or the user's (checked reachable). Throws PORT_BUSY, HTTP_CONNECT, HTTP_TLS, MQTT_CONNECT. */
  async startServices(): Promise<void> {
    const b = this.o.build;
    const ext = this.o.external;
    if (ext?.update) {
      this.hostUrl = ext.update.url.replace(/\/+$/, "");
      await reachable(this.hostUrl, ext.update.ca);
    } else {
      this.host = await startUpdateHost({ dir: b.dirs.www, cert: b.server.certPem, key: b.server.keyPem, clock: this.clock, routes: {} });
      this.hostUrl = this.host.url;
    }
    if (ext?.broker) {
      this.mqtt = { ...ext.broker, url: `mqtt://${ext.broker.host}:${ext.broker.port}` };
    } else {
      this.broker = await startBroker({ kind: "aedes" });
      this.mqtt = { host: this.broker.host, port: this.broker.port, url: this.broker.url };
    }
  }

  /** Each stage's envelope becomes latest.json: in memory on the embedded host, a file in the user's tree. */
  private publishLatest(env: Uint8Array): void {
    if (this.host) {
      this.host.setRoute(LATEST, env);
      return;
    }
    const target = join(this.o.build.dirs.www, LATEST);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.tmp`, env);
    renameSync(`${target}.tmp`, target);
  }

  /** The controller and its SQLite audit log; each stage's envelope becomes latest.json. */
  async startController(): Promise<void> {
    this.log = new AuditLog(join(this.o.build.dirs.out, "audit.db"));
    this.controller = await FleetController.start({
      broker: this.mqtt, log: this.log, clock: this.clock, virtualClock: this.clock,
      // roles mode: the controller holds only the online keys; the release key stays on the build server
      roles: { rollout: this.o.build.roles.rollout, commands: this.o.build.roles.commands },
      sampleEveryMs: 60_000, thresholds: this.o.thresholds,
      publishManifest: (env) => this.publishLatest(env),
    });
  }

  /** Flash the factory image into every device (powered off). */
  makeDevices(): void {
    const key = keyConfigOf(this.o.build.key);
    for (const spec of this.o.specs) {
      const chip = SimChip.create({});
      writeImage(chip, "app0", this.o.factory);
      const mqtt = new TcpMqttPort({ clock: this.clock });
      this.mqtts.push(mqtt);
      const config = {
        product: PRODUCT, channel: CHANNEL, manifestUrl: this.manifestUrl, trustedKeys: [key], root: toBase64(this.o.build.roles.rootEnvelope),
        requireImageSignature: true, checkIntervalMs: 0, hardware: spec.hardware, region: spec.region, groups: spec.groups,
        retry: { baseMs: 2000, maxMs: 30_000, maxAttempts: 6 },
        download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 16 * 1024 },
        diagnostics: { windowMs: 30_000, heapFloor: 16 * 1024, checkTimeoutMs: 10_000 },
        mqtt: { host: this.mqtt.host, port: this.mqtt.port, keepaliveMs: 120_000 },
      };
      const device: DemoDevice = { ...spec, sim: undefined as unknown as SimDevice };
      device.sim = new SimDevice({
        chip, engine: this.engine, config, deviceId: spec.id, hardware: spec.hardware, clock: this.clock, mqtt, maxBoots: 40,
        http: new NodeHttp({ ca: this.ca, clock: this.clock }),
        // A reset drops the sockets without DISCONNECT: the broker's will marks the device offline.
        onBoot: () => mqtt.powerOff(),
        onProgress: (written, total) => {
          device.download = written >= total ? undefined : { written, total };
        },
        onEvent: (e) => {
          if (e.state !== "downloading") device.download = undefined;
          this.o.onEvent?.(device, e);
        },
      });
      this.devices.push(device);
    }
  }

  /** Power every device on; resolves once each has reported `version` and is online. */
  async boot(version: string, tick?: () => void): Promise<void> {
    this.runs = this.devices.map((d) => d.sim.run(() => this.stopped, { maxVirtualMs: Number.MAX_SAFE_INTEGER, quietMs: 500, maxRealMs: this.o.maxRealMs }));
    for (const r of this.runs) r.catch((e: unknown) => (this.crashed ??= e));
    await this.until(() => this.log.devices().filter((d) => d.version === version && d.online).length === this.devices.length, `every device to report ${version}`, tick);
    this.controller.sampleNow();
  }

  /** Poll (real time, while the devices drive the virtual clock) until `cond`. */
  async until(cond: () => boolean, what: string, tick?: () => void): Promise<void> {
    const deadline = performance.now() + this.o.maxRealMs;
    while (!cond()) {
      if (this.crashed) throw this.crashed;
      if (performance.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
      tick?.();
      await wait(25);
    }
  }

  /**
   * Keep virtual time still (real time passes) until `cond` or `maxRealMs`: devices react to an
   * announcement within moments on a real network, but the few ms an MQTT delivery takes on
   * loopback are not held by any port, and with many drivers the clock could otherwise race a
   * whole watch window ahead before the first device has even started.
   */
  async holdUntil(cond: () => boolean, maxRealMs: number): Promise<void> {
    const release = this.clock.hold();
    const busy = setInterval(() => this.clock.activity(), 5);
    const deadline = performance.now() + maxRealMs;
    try {
      while (!cond() && performance.now() < deadline) {
        if (this.crashed) throw this.crashed;
        await wait(10);
      }
    } finally {
      clearInterval(busy);
      release();
    }
  }

  /** Devices that produced an event for `version` since event index `since[id]`. */
  reacted(ids: readonly DemoDevice[], version: string, since: Map<string, number>): boolean {
    return ids.every((d) => d.sim.events.slice(since.get(d.id) ?? 0).some((e) => e.to === version));
  }

  /**
   * No device is mid-update or resetting. A "refused" event answers a command (POLICY_BUSY while a
   * self-test runs) and changes no state: the state is that of the last other event. Counting it
   * as the state let the demo read a rev1 device as settled on 1.2.0 in the middle of the self-test
   * that rolled it back (1 run in 6 of `xsota demo --devices 12 --quick`).
   */
  quiet(): boolean {
    return this.devices.every((d) => !d.sim.resetting && !IN_PROGRESS.has(stateOf(d.sim.events)));
  }

  /**
   * No device is mid-update (its last event is not an in-progress state), no reset is pending,
   * every event every device produced is in the audit log, and the log has every device's
   * version report for the image it runs (a device rolled back reports its final event and
   * its boot's version in two messages: the log may hold the first before the second).
   */
  async settle(): Promise<void> {
    await this.until(() => this.quiet() && this.missing() === 0 && this.unreported() === 0,
      "every device to finish its update and every report to reach the audit log");
  }

  /** Devices whose version in the audit log is not the one they run. */
  private unreported(): number {
    const logged = this.versions();
    return this.devices.filter((d) => {
      const v = d.sim.running?.version;
      return v !== undefined && logged.get(d.id) !== v;
    }).length;
  }

  private missing(): number {
    const have = new Set((this.log.db.prepare("SELECT device, seq FROM events").all() as { device: string; seq: number }[]).map((r) => `${r.device}:${r.seq}`));
    let n = 0;
    for (const d of this.devices) for (const e of d.sim.events) if (!have.has(`${d.id}:${e.seq}`)) n++;
    return n;
  }

  /** Devices whose bucket for `rolloutId` is inside `percent` (what the device itself computes). */
  inBucket(rolloutId: string, percent: number): DemoDevice[] {
    return this.devices.filter((d) => rolloutBucket(d.id, rolloutId, nodeCrypto) < percent * 100);
  }

  /** The version each device reports (audit log), by id. */
  versions(): Map<string, string | null> {
    return new Map(this.log.devices().map((d) => [d.id, d.version]));
  }

  /** Stop driving virtual time: the devices freeze where they are (sockets open), the CPU rests. */
  async pause(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.runs);
  }

  /** Stop every device and tear everything down. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    await Promise.allSettled(this.runs);
    await Promise.all(this.devices.map((d) => d.sim.stop()));
    for (const m of this.mqtts) m.powerOff();
    this.controller?.close();
    this.log?.close();
    await this.broker?.close();
    await this.host?.close();
  }
}

/** A HEAD of the update host's root with the pinned CA. Throws HTTP_CONNECT or HTTP_TLS. */
function reachable(url: string, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new OtaError("USAGE", `--update-url is not a URL: ${url}`));
      return;
    }
    if (u.protocol !== "https:") {
      reject(new OtaError("HTTP_INSECURE_URL", `--update-url ${url}: devices fetch over https: only`));
      return;
    }
    const req = request(u, { method: "HEAD", ca, timeout: 5000 }, (res) => {
      res.resume();
      resolve();
    });
    req.on("timeout", () => req.destroy(new Error("no answer in 5 s")));
    req.on("error", (e: NodeJS.ErrnoException) => {
      const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|ALTNAME/i.test(`${e.code ?? ""} ${e.message}`);
      reject(new OtaError(tls ? "HTTP_TLS" : "HTTP_CONNECT", `update host ${url}: ${e.message}`));
    });
    req.end();
  });
}
