/*
 * The fleet simulator: N SimDevices (AGENT's; Node engine by default, any Engine works) in one
 * process, all on one VirtualClock shared with the controller, over a real broker (aedes or
 * mosquitto) and the real HTTPS update host. Seeded faults: a hardware revision whose
 * diagnostics fail on given firmware versions, flaky links (HTTP bodies cut part-way, MQTT links
 * dropped) and power cuts during the download.
 *
 * Images are small (32 KB default) and SimFlash is sparse, so memory stays bounded.
 * `FleetSim` is the toolkit (the demo drives several releases with it); `runFleetSim` is one
 * staged release, measured, ending when the release is done (or halted) and every event every
 * device produced is in the audit log exactly once (the end-to-end delivery check).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toHex } from "../../modules/bytes";
import { readRunning } from "../../modules/agent";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { startBroker, type Broker, type BrokerKind } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { startUpdateHost, type UpdateHost } from "../../backend/update-host";
import { makeCa, makeServerCert } from "../../backend/release/pki";
import { generateKey, keyConfigOf, type SigningKey } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { NodeHttp } from "../engines/ports/http";
import { sha256, nodeCrypto } from "../../backend/crypto";
import { createNodeEngine } from "../engines/engine-node";
import type { Engine } from "../engines/engine";
import { SimDevice } from "../chip/device";
import { SimChip } from "../chip/chip";
import { buildImage } from "../chip/image-builder";
import { writeImage } from "./lab";
import type { AuditStore, Awaitable, ReleaseRow } from "../../backend/fleet/audit-store";
import { openAuditStore } from "../../backend/fleet/open-audit";
import { FleetController, parsePlan, type Thresholds } from "../../backend/fleet/controller";
import { ConnectionGate, FlakyHttp, memoCrypto, prng } from "./fleet-faults";
import { startFleetView, type FleetView } from "../../backend/fleet/web";

export interface FleetSimSetup {
  devices: number;
  seed: number;
  brokerKind?: BrokerKind;
  /** Engine for every device (default: a Node engine made here). */
  engine?: Engine;
  product?: string;
  /** Version of the factory image every device starts on (default 1.0.0). */
  factoryVersion?: string;
  imageBytes?: number;
  /** Share of devices on the bad hardware revision (default 0.1). */
  badHardwareShare?: number;
  /** The bad revision's name (default esp32-rev1; the others are esp32-rev3). */
  badHardware?: string;
  /** Versions whose self-test fails on the bad revision (default: every version but the factory one). */
  badVersions?: string[];
  flakyShare?: number;
  powerCutShare?: number;
  groups?: string[];
  regions?: string[];
  thresholds?: Partial<Thresholds>;
  dbPath?: string;
  /**
   * HTTPS requests of the whole fleet open at once (default 2,000); the others wait to connect
   * while virtual time stands still (faults.ts ConnectionGate: one process has 20,000 descriptors).
   */
  maxHttpConnections?: number;
  /** Serve the fleet view while the simulation runs (127.0.0.1, any port); gets its URL. */
  onView?: (url: string) => void;
  maxRealMs?: number;
  /** Real ms of silence on held I/O before virtual time may jump (default 250). */
  quietMs?: number;
  progress?: (line: string) => void;
}

export interface FleetSimReport {
  devices: number;
  seed: number;
  broker: BrokerKind;
  imageBytes: number;
  release: { id: string; version: string; status: string; flagged: boolean; reason: string | null; stage: number };
  updated: number;
  rolledBack: number;
  failed: number;
  powerCuts: number;
  linkDrops: number;
  /** HTTPS requests that waited at once, at most, for one of the fleet's connections (maxHttpConnections). */
  httpWaitPeak: number;
  /**
   * lost: events a device emitted that never reached the log (must be 0). gaps: seqs missing
   * between a device's first and last logged event (must be 0 while no outbox overflowed).
   * logged may exceed emitted: an event stored in the NVS outbox just before a power cut is
   * never seen by the simulator's observer, yet is delivered from the outbox after the reboot.
   */
  events: { emitted: number; logged: number; duplicatesDropped: number; lost: number; gaps: number;
    /** Same (device, seq) with other content, and device messages parked: 0 in a fleet of honest devices. */
    conflicts: number; parked: number };
  final: { totals: Record<string, number>; byGroup: Record<string, Record<string, number>> };
  /** Devices per version over virtual time (minutes since the release started). */
  timeline: { minute: number; versions: Record<string, number> }[];
  virtualMinutes: number;
  realSeconds: number;
  devicesUpdatedPerSecond: number;
  peakRssMb: number;
}

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FleetSim {
  readonly devices: SimDevice[] = [];
  readonly ids: string[] = [];
  readonly product: string;
  readonly manifestPath: string;
  private https: FlakyHttp[] = [];
  /** Every device's HTTPS requests through one gate (faults.ts ConnectionGate). */
  readonly gate: ConnectionGate;
  private mqtts: TcpMqttPort[] = [];
  private mqttDrops = 0;
  private runs: Promise<void>[] = [];
  private stopped = false;
  private crashed: unknown;
  private ownEngine: Engine | undefined;
  private images = new Map<string, Uint8Array>();
  peakRss = process.memoryUsage().rss;
  private rssTimer: ReturnType<typeof setInterval>;
  view: FleetView | undefined;

  private constructor(
    readonly o: FleetSimSetup,
    readonly dir: string,
    readonly host: UpdateHost,
    readonly broker: Broker,
    readonly log: AuditStore,
    readonly key: SigningKey,
    readonly controller: FleetController,
    readonly ca: string,
    readonly clock: VirtualClock,
  ) {
    this.product = o.product ?? "thermo";
    this.manifestPath = `/${this.product}/stable/release.json`;
    this.gate = new ConnectionGate(o.maxHttpConnections ?? 2000, clock);
    this.rssTimer = setInterval(() => {
      try {
        this.peakRss = Math.max(this.peakRss, process.memoryUsage().rss);
      } catch {
        // EMFILE: /proc cannot be opened when the process is out of descriptors; the sockets report it
      }
    }, 100);
    this.rssTimer.unref();
  }

  /** Broker, update host, controller and N powered-off devices. */
  static async create(o: FleetSimSetup): Promise<FleetSim> {
    if (!Number.isInteger(o.devices) || o.devices < 1) throw new RangeError("devices must be a positive integer");
    const dir = mkdtempSync(join(tmpdir(), "xsota-fleetsim-"));
    const clock = new VirtualClock();
    const ca = await makeCa();
    const cert = await makeServerCert(ca, { hosts: ["127.0.0.1", "localhost"] });
    const host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, clock, routes: {} });
    const broker = await startBroker({ kind: o.brokerKind ?? "aedes" });
    const log = await openAuditStore(o.dbPath ?? join(dir, "audit.db"));
    const key = generateKey("ecdsa-p256");
    const manifestPath = `/${o.product ?? "thermo"}/stable/release.json`;
    const controller = await FleetController.start({
      broker, log, clock, virtualClock: clock, signingKey: key, sampleEveryMs: 60_000, thresholds: o.thresholds ?? {},
      publishManifest: (env) => host.setRoute(manifestPath, env),
    });
    const sim = new FleetSim(o, dir, host, broker, log, key, controller, ca.caCertPem, clock);
    sim.makeDevices();
    if (o.onView) {
      sim.view = await startFleetView(controller);
      o.onView(sim.view.url);
    }
    return sim;
  }

  /** Real-time budget of a whole run (default 10 min, plus 0.3 s per device beyond 2,000). */
  get maxRealMs(): number {
    return this.o.maxRealMs ?? 600_000 + Math.max(0, this.devices.length - 2000) * 300;
  }

  get imageBytes(): number {
    return this.o.imageBytes ?? 32 * 1024;
  }

  /** Build (once) and serve the image of `version`; returns its URL and bytes. */
  image(version: string, secureVersion = 1): { url: string; bytes: Uint8Array } {
    const path = `/${this.product}/fw-${version}.bin`;
    const url = `${this.host.url}${path}`;
    const cached = this.images.get(version);
    if (cached) return { url, bytes: cached };
    const bytes: Uint8Array = buildImage({ version, secureVersion, project: this.product, size: this.imageBytes, behavior: "healthy" });
    this.images.set(version, bytes);
    this.host.setRoute(path, bytes);
    return { url, bytes };
  }

  private makeDevices(): void {
    const o = this.o;
    const random = prng(o.seed);
    const factoryVersion = o.factoryVersion ?? "1.0.0";
    const factory = this.image(factoryVersion);
    this.host.setRoute(this.manifestPath, createManifest({ product: this.product, channel: "stable", version: factoryVersion, secureVersion: 1, url: factory.url, image: factory.bytes, keys: [this.key], signedAt: this.clock.wallTime() }));
    const badHw = o.badHardware ?? "esp32-rev1";
    const badVersions = o.badVersions ? new Set(o.badVersions) : undefined;
    const inner = o.engine ?? (this.ownEngine = createNodeEngine());
    // The bad revision's self-test fails on the listed firmware (as if its heap ran short there).
    const engine: Engine = {
      name: inner.name,
      boot: (ports, boot) => {
        const version = readRunning(ports).version;
        const bad = ports.system.hardwareRevision() === badHw && (badVersions ? badVersions.has(version) : version !== factoryVersion);
        return inner.boot(ports, bad && boot.behavior === "healthy" ? { ...boot, behavior: "fail-diagnostics" } : boot);
      },
      close: () => inner.close(),
    };
    const crypto = memoCrypto(nodeCrypto);
    const groups = o.groups ?? ["lab", "field", "retail", "beta"];
    const regions = o.regions ?? ["eu", "us"];
    for (let i = 0; i < o.devices; i++) {
      const id = `24${(0x0ac4000000 + i).toString(16).padStart(10, "0")}`;
      const hardware = random() < (o.badHardwareShare ?? 0.1) ? badHw : "esp32-rev3";
      const flaky = random() < (o.flakyShare ?? 0.05);
      const cut = random() < (o.powerCutShare ?? 0.02);
      const group = groups[Math.floor(random() * groups.length)]!;
      const chip = SimChip.create({});
      writeImage(chip, "app0", factory.bytes);
      const http = new FlakyHttp(new NodeHttp({ ca: this.ca, clock: this.clock }), prng(o.seed * 7919 + i), flaky ? 0.5 : 0, this.gate);
      const mqtt = new TcpMqttPort({ clock: this.clock });
      this.https.push(http);
      this.mqtts.push(mqtt);
      const config = {
        product: this.product, channel: "stable", manifestUrl: `${this.host.url}${this.manifestPath}`, trustedKeys: [keyConfigOf(this.key)],
        requireImageSignature: false, checkIntervalMs: 0, hardware, region: regions[i % regions.length], groups: [group],
        retry: { baseMs: 2000, maxMs: 30_000, maxAttempts: 6 },
        download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192 },
        diagnostics: { windowMs: 30_000, heapFloor: 16 * 1024, checkTimeoutMs: 10_000 },
        mqtt: { host: this.broker.host, port: this.broker.port, keepaliveMs: 120_000 },
        outboxCapacity: 64,
      };
      let cutPending = cut;
      let dropPending = flaky;
      const device: SimDevice = new SimDevice({
        chip, engine, http, config, deviceId: id, hardware, clock: this.clock, mqtt, crypto, maxBoots: 40,
        // A power cut kills the sockets without DISCONNECT: the will marks the device offline.
        onBoot: () => mqtt.powerOff(),
        onEvent: (e) => {
          if (e.state !== "downloading") return;
          if (cutPending) {
            cutPending = false;
            device.powerCutAt(1 + Math.floor(random() * 12));
          }
          if (dropPending) {
            dropPending = false;
            this.mqttDrops++;
            queueMicrotask(() => mqtt.dropLinks());
          }
        },
      });
      this.devices.push(device);
      this.ids.push(id);
    }
  }

  /** Power every device on and wait until each has reported its version. */
  async boot(): Promise<void> {
    const maxRealMs = this.maxRealMs;
    // Many devices load the event loop: held I/O may be silent for a while in real time without
    // being stalled, so time jumps only after `quietMs` of real silence (driveUntil's default is 20).
    const drive = { maxVirtualMs: 60 * 86400_000, maxRealMs, quietMs: this.o.quietMs ?? 250 };
    // One driver for the shared clock. Each device's run() is called only to boot it or carry out
    // a reset (until = true: it returns as soon as the device is up); N concurrent run() loops
    // would each poll the clock and starve the real I/O.
    const busy = new Set<number>();
    const kick = (i: number) => {
      if (busy.has(i) || this.stopped) return;
      busy.add(i);
      const p = this.devices[i]!.run(() => true, drive).then(() => void busy.delete(i), (e) => void (this.crashed ??= e));
      this.runs.push(p);
    };
    this.devices.forEach((_, i) => kick(i));
    const driver = driveUntil(this.clock, () => {
      if (this.stopped) return true;
      this.devices.forEach((d, i) => d.resetting && kick(i));
      return false;
    }, drive);
    this.runs.push(driver.catch((e) => void (this.crashed ??= e)));
    const v = this.o.factoryVersion ?? "1.0.0";
    // Power-on is real work (engines starting, TLS, MQTT connects) that no timer needs: keep
    // virtual time still until every device has reported, or 60 s of real time have passed.
    const release = this.clock.hold();
    const beat = setInterval(() => this.clock.activity(), 5);
    const cap = setTimeout(() => (clearInterval(beat), release()), 60_000);
    try {
      await this.until(async () => (await this.log.onlineOn(v)) === this.devices.length, "every device to report its version");
    } finally {
      clearInterval(beat);
      clearTimeout(cap);
      release();
    }
    await this.controller.sampleNow();
  }

  /** Wait (real time, while the devices drive the virtual clock) for `cond`. */
  async until(cond: () => Awaitable<boolean>, what: string): Promise<void> {
    const deadline = performance.now() + this.maxRealMs;
    while (!(await cond())) {
      if (this.crashed) throw this.crashed;
      if (performance.now() > deadline) throw new Error(`fleet sim: timed out waiting for ${what}`);
      await wait(20);
    }
  }

  /** Distinct events every device has emitted so far. */
  emitted(): number {
    return this.devices.reduce((n, d) => n + new Set(d.events.map((e) => e.seq)).size, 0);
  }

  /** Events some device emitted that are not in the audit log (yet). */
  async missing(): Promise<number> {
    const have = new Set(await this.log.eventKeys());
    let n = 0;
    this.devices.forEach((d, i) => {
      for (const seq of new Set(d.events.map((e) => e.seq))) if (!have.has(`${this.ids[i]}:${seq}`)) n++;
    });
    return n;
  }

  /** No device mid-update (its last event is a final one), none resetting, every event in the log. */
  async settle(): Promise<void> {
    const final = new Set(["committed", "rolled-back", "failed", "refused", "idle"]);
    await this.until(
      async () => this.devices.every((d) => !d.resetting && (d.events.length === 0 || final.has(d.events[d.events.length - 1]!.state)))
        && (await this.log.eventCount()) >= this.emitted() && (await this.missing()) === 0,
      "every device to settle and every event to reach the log",
    );
  }

  /** Start a staged release of `version` (image built and served) and wait until it is done or halted, and settled. */
  async rollout(version: string, plan: string, options: { rolloutId?: string; secureVersion?: number } = {}): Promise<ReleaseRow> {
    const img = this.image(version, options.secureVersion ?? 1);
    const stages = parsePlan(plan);
    const r = await this.controller.startRelease({ product: this.product, channel: "stable", version, secureVersion: options.secureVersion ?? 1, url: img.url, size: img.bytes.length, sha256: toHex(sha256(img.bytes)) }, stages, options.rolloutId);
    const say = this.o.progress ?? (() => {});
    say(`release ${r.id}: ${stages.map((s) => `${s.percent}%`).join(" -> ")}`);
    let stage = -1;
    await this.until(async () => {
      const cur = (await this.log.release(r.id))!;
      if (cur.stage !== stage) {
        stage = cur.stage;
        say(`stage ${cur.stage + 1}/${stages.length} (${stages[cur.stage]!.percent}%): ${JSON.stringify(await this.log.versionTotals())}`);
      }
      return cur.status !== "running";
    }, `release ${r.id} to finish`);
    await this.settle();
    await this.controller.sampleNow();
    return (await this.log.release(r.id))!;
  }

  async report(release: ReleaseRow, startedAt: number, realSeconds: number): Promise<FleetSimReport> {
    const updated = this.devices.filter((d) => d.running?.version === release.version).length;
    const timeline = new Map<number, Record<string, number>>();
    for (const s of await this.log.samples()) {
      if (s.grp !== "*" || s.time < startedAt) continue;
      const minute = Math.round((s.time - startedAt) / 60_000);
      (timeline.get(minute) ?? timeline.set(minute, {}).get(minute)!)[s.version] = s.count;
    }
    const inRelease = (e: { to?: string; rollout?: string }) => e.to === release.version || e.rollout === release.id;
    return {
      devices: this.devices.length,
      seed: this.o.seed,
      broker: this.broker.kind,
      imageBytes: this.imageBytes,
      release: { id: release.id, version: release.version, status: release.status, flagged: release.flagged, reason: release.reason, stage: release.stage },
      updated,
      rolledBack: this.devices.filter((d) => d.events.some((e) => e.state === "rolled-back" && inRelease(e))).length,
      failed: this.devices.filter((d) => d.events.some((e) => e.state === "failed" && inRelease(e))).length,
      powerCuts: this.devices.reduce((n, d) => n + d.counters.powerCuts, 0),
      linkDrops: this.https.reduce((n, h) => n + h.drops, 0) + this.mqttDrops,
      httpWaitPeak: this.gate.peakWaiting,
      events: {
        emitted: this.emitted(), logged: await this.log.eventCount(), duplicatesDropped: this.controller.duplicates,
        lost: await this.missing(), gaps: await this.log.seqGaps(), conflicts: this.controller.conflicts, parked: this.controller.parked,
      },
      final: { totals: await this.log.versionTotals(), byGroup: await this.log.versionsByGroup() },
      timeline: [...timeline.entries()].sort((a, b) => a[0] - b[0]).map(([minute, versions]) => ({ minute, versions })),
      virtualMinutes: Math.round((release.updated - startedAt) / 60_000),
      realSeconds: Math.round(realSeconds * 100) / 100,
      devicesUpdatedPerSecond: Math.round((updated / realSeconds) * 10) / 10,
      peakRssMb: Math.round(Math.max(this.peakRss, process.memoryUsage().rss) / 1048576),
    };
  }

  /** Stop every device and tear everything down. Safe twice. */
  async close(): Promise<void> {
    if (this.stopped && !this.runs.length) return;
    this.stopped = true;
    clearInterval(this.rssTimer);
    await Promise.allSettled(this.runs);
    this.runs = [];
    await Promise.all(this.devices.map((d) => d.stop()));
    for (const m of this.mqtts) m.powerOff();
    await this.view?.close();
    this.controller.close();
    await this.log.close();
    await this.ownEngine?.close();
    await this.broker.close();
    await this.host.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One staged release over a simulated fleet, measured. */
export async function runFleetSim(o: FleetSimSetup & { plan?: string; version?: string }): Promise<FleetSimReport> {
  const sim = await FleetSim.create(o);
  try {
    (o.progress ?? (() => {}))(`fleet sim: ${o.devices} devices on ${sim.broker.kind}, seed ${o.seed}, ${sim.imageBytes / 1024} KB images`);
    await sim.boot();
    const t0 = performance.now();
    const v0 = sim.clock.wallTime();
    const version = o.version ?? "1.1.0";
    const r = await sim.rollout(version, o.plan ?? "5:10m,25:10m,100:10m", { rolloutId: `${sim.product}-${version}-sim${o.seed}` });
    return await sim.report(r, v0, (performance.now() - t0) / 1000);
  } finally {
    await sim.close();
  }
}
