/*
 * The seed's whole story on simulated ESP32s, in order: build server (key, CA, four signed
 * builds), update host + broker + controller, a fleet booting 1.0.0, a staged rollout of
 * 1.1.0, 1.2.0 rolling back on one board revision until the controller halts it, 1.2.1
 * forced to every group, and the audit table. Returns what happened (the test asserts it).
 */
import { rmSync } from "node:fs";
import type { AuditEvent } from "../../modules/events";
import type { Engine } from "../../host-sim/engines/engine";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import { parsePlan, type Stage } from "../../backend/fleet/controller";
import { startFleetView, type FleetView } from "../../backend/fleet/web";
import { buildServer, publish, PRODUCT, CHANNEL, type BuildServer, type Firmware, type FirmwareSpec } from "./build";
import { DemoFleet, type DemoDevice, type DeviceSpec, type External } from "./fleet";
import { holdAcrossZeroDelay } from "./hardware";
import { Ui, kb } from "./ui";

export interface DemoOptions {
  devices: number;
  engine: "xs" | "node";
  imageBytes: number;
  out: string;
  /** Serve the fleet view on this port (0 = any) and keep it up; undefined = no view. */
  servePort?: number;
  maxRealMs: number;
  external?: External;
}

export const BAD_REVISION = "esp32-rev1";
export const GOOD_REVISION = "esp32-rev3";
export const PLANS = { "1.1.0": "5:10m,25:10m,100:10m", "1.2.0": "25:10m,60:10m,100:10m", "1.2.1": "1:10m" } as const;

export const FIRMWARE: FirmwareSpec[] = [
  { version: "1.0.0", behavior: "healthy", note: "factory image" },
  { version: "1.1.0", behavior: "healthy", note: "healthy feature release (one module changed: also published as a patch from 1.0.0)", deltaFrom: "1.0.0" },
  { version: "1.2.0", behavior: `fail-diagnostics@${BAD_REVISION}`, note: `regression: its self-test fails on ${BAD_REVISION} boards` },
  { version: "1.2.1", behavior: "healthy", note: "critical fix (forced)" },
];

export interface DemoResult {
  engine: string;
  out: string;
  /** The published tree (images/, products/...). */
  www: string;
  devices: { id: string; hardware: string; region: string; groups: string[]; version: string | null; path: string[] }[];
  byGroup: Record<string, Record<string, number>>;
  releases: { id: string; version: string; status: string; flagged: boolean; reason: string | null; stage: number; plan: string }[];
  rolledBack: { id: string; hardware: string; code: string | null }[];
  /** Devices that updated by a delta: the patch bytes they fetched and the full image's size. */
  deltas: { id: string; to: string; patchBytes: number; imageBytes: number }[];
  keptBad: string[];
  forced: string[];
  realSeconds: number;
  viewUrl?: string;
}

/** Device i: every third board is the bad revision; regions alternate; groups = [revision, region]. */
export function deviceSpecs(n: number): DeviceSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const hardware = i % 3 === 2 ? BAD_REVISION : GOOD_REVISION;
    const region = i % 2 === 0 ? "eu" : "us";
    return { id: `240ac4${(0x10 + i).toString(16).padStart(6, "0")}`, hardware, region, groups: [hardware, region] };
  });
}

const ROLLOUT = (v: string) => `${PRODUCT}-${v}`;

/**
 * Tell the story and return what happened (checkStory in cli/demo.ts judges it). Throws
 * PORT_BUSY (the view's port), HTTP_CONNECT / HTTP_TLS / HTTP_INSECURE_URL / USAGE (your update
 * host), MQTT_CONNECT (a broker), what SIM's builder and SIGN's tools throw, and Error when a step
 * does not finish within `maxRealMs`.
 */
export async function runDemo(o: DemoOptions, ui: Ui): Promise<DemoResult> {
  const t0 = performance.now();
  rmSync(o.out, { recursive: true, force: true });
  const c = ui.c;
  ui.title(`xsota demo: OTA updates for ${o.devices} simulated ESP32s (${o.engine === "xs" ? "our TypeScript in the real XS engine" : "Node engine"}), virtual time`);

  ui.step(1, "Build server: keys, certificates, signed firmware");
  const b = await buildServer(o.out, FIRMWARE, o.imageBytes, o.external?.update?.www);
  ui.ok(`release key ECDSA P-256, id ${b.key.id} (offline: signs images and release manifests)  ${c.dim(b.dirs.keys + "/release.pem")}`);
  ui.ok(`root v1 (root key offline) names the roles: release ${b.key.id}, rollout ${b.roles.rollout.id} and commands ${b.roles.commands.id} (online, the controller's only keys)  ${c.dim(b.dirs.keys + "/root.json")}`);
  ui.ok(`TLS CA + server certificate for 127.0.0.1  ${c.dim(b.dirs.tls + "/ca.pem")}`);
  for (const fw of b.firmware.values()) {
    ui.ok(`firmware ${c.bold(fw.version)}  ${kb(fw.bytes.length)}  signed (espsecure sign_data v1)  sha256 ${fw.sha256.slice(0, 12)}…  ${c.dim(fw.note)}`);
    if (fw.patch) ui.ok(`patch ${fw.patch.from.version} → ${fw.version}  ${kb(fw.patch.bytes.length)} (${((fw.patch.bytes.length * 100) / fw.bytes.length).toFixed(1)} % of the image)  detools sequential, heatshrink  ${c.dim("xsota delta create")}`);
  }

  ui.step(2, "Update host, MQTT broker, fleet controller");
  const inner: Engine = o.engine === "xs" ? createXsEngine() : createNodeEngine();
  const rolledBack: DemoResult["rolledBack"] = [];
  const deltas: DemoResult["deltas"] = [];
  const fleet = new DemoFleet({
    build: b, ...(o.external ? { external: o.external } : {}), engine: (clock) => (inner.name === "xs" ? holdAcrossZeroDelay(inner, clock) : inner), specs: deviceSpecs(o.devices), factory: b.firmware.get("1.0.0")!.bytes,
    thresholds: { maxFailureRate: 0.2, minFailures: 2 }, maxRealMs: o.maxRealMs,
    onEvent: (d, e) => onEvent(ui, d, e, rolledBack, deltas, o.devices <= 20),
  });
  let view: FleetView | undefined;
  try {
    await fleet.startServices();
    const base = publish(b, b.firmware.get("1.0.0")!, fleet.hostUrl, fleet.clock.wallTime());
    ui.ok(`${fleet.host ? "HTTPS update host" : "your update host"} ${fleet.hostUrl} (devices pin ${fleet.host ? "the demo CA" : "your CA"})  ${c.dim((fleet.host ? "serving " : "publishing into ") + b.dirs.www)}`);
    ui.info(c.dim(`published 1.0.0: ${fleet.manifestUrl.replace(fleet.hostUrl, "")} (${base.length} B signed manifest)`));
    ui.ok(`MQTT broker ${fleet.broker ? "(embedded aedes) " : "(yours) "}${fleet.mqtt.url}`);
    await fleet.startController();
    ui.ok(`fleet controller, audit log ${c.dim(b.dirs.out + "/audit.db")}`);
    if (o.servePort !== undefined) {
      view = await startFleetView(fleet.controller, { port: o.servePort });
      ui.ok(`fleet view ${c.bold(view.url)} (live)`);
    }

    ui.step(3, `The fleet boots 1.0.0: ${o.devices} devices, 2 board revisions, 2 regions`);
    fleet.makeDevices();
    const bootStart = performance.now();
    await fleet.boot("1.0.0", () => ui.bar("booting   ", fleet.log.devices().filter((d) => d.online).length, o.devices, "devices online"));
    ui.clearBar();
    ui.ok(`${o.devices}/${o.devices} online and reporting 1.0.0 on devices/<id>/version  ${c.dim(`(${((performance.now() - bootStart) / 1000).toFixed(1)} s)`)}`);
    ui.table([["group", "devices"], ...Object.entries(fleet.log.versionsByGroup()).sort().map(([g, m]) => [g, Object.values(m).reduce((a, n) => a + n, 0)])]);

    ui.step(4, `Staged rollout of 1.1.0: ${planText(parsePlan(PLANS["1.1.0"]))}`);
    const r110 = await rollout(ui, fleet, b, "1.1.0", parsePlan(PLANS["1.1.0"]));
    ui.ok(`release ${r110.id}: ${r110.status}; ${count(fleet, "1.1.0")}/${o.devices} devices on 1.1.0`);
    const byDelta = deltas.filter((x) => x.to === "1.1.0");
    if (byDelta.length) {
      const wire = byDelta.reduce((n, x) => n + x.patchBytes, 0);
      ui.ok(`${byDelta.length} of them by delta from the image they ran: ${kb(wire)} on the wire instead of ${kb(byDelta.length * byDelta[0]!.imageBytes)} of full images`);
    }

    ui.step(5, `Staged rollout of 1.2.0: ${planText(parsePlan(PLANS["1.2.0"]))}, halt when > 20 % (at least 2) roll back`);
    const r120 = await rollout(ui, fleet, b, "1.2.0", parsePlan(PLANS["1.2.0"]));
    const keptBad = fleet.devices.filter((d) => fleet.versions().get(d.id) === "1.2.0").map((d) => d.id);
    if (r120.status === "halted") ui.bad(`controller ${c.red("HALTED")} release ${r120.id} at stage ${r120.stage + 1} (re-signed at 0 %): ${r120.reason}`);
    else ui.warn(`release ${r120.id} ended ${r120.status}`);
    ui.info(`${keptBad.length} device(s) on other revisions passed their self-test and run 1.2.0; the rest stayed on 1.1.0`);

    ui.step(6, "Critical fix 1.2.1, forced to every group");
    const fw121 = b.firmware.get("1.2.1")!;
    const env121 = publish(b, fw121, fleet.hostUrl, fleet.clock.wallTime());
    const r121 = await fleet.controller.startRelease(fields(fw121), parsePlan(PLANS["1.2.1"]), ROLLOUT("1.2.1"), env121);
    let forced: string[] = [];
    for (let attempt = 1; ; attempt++) {
      const waiting = fleet.devices.filter((d) => fleet.versions().get(d.id) !== "1.2.1");
      const since = new Map(fleet.devices.map((d) => [d.id, d.sim.events.length]));
      const sent = (await Promise.all([...new Set(waiting.map((d) => d.hardware))].map((g) => fleet.controller.force(g)))).flat();
      if (attempt === 1) {
        forced = sent;
        ui.ok(`forced to every group (${[...new Set(fleet.devices.map((d) => d.hardware))].join(", ")}): ${sent.length} devices; a forced update skips the rollout % and the maintenance window, never the signature or version checks`);
      } else {
        ui.warn(`re-sent the force to ${waiting.length} device(s) that were busy when it arrived (a command answered POLICY_BUSY is not retried) (…${waiting.map((d) => d.id.slice(-4)).join(" …")})`);
      }
      let paced = false;
      const pacing = fleet.holdUntil(() => fleet.reacted(waiting, "1.2.1", since), 3000).finally(() => (paced = true));
      // Done when every device runs 1.2.1, or (before the last attempt) the rest have sat idle
      // for a while without it: a device busy when the command came dropped it.
      let quietSince = Number.POSITIVE_INFINITY;
      await watchDownloads(ui, fleet, "1.2.1", () => {
        if (count(fleet, "1.2.1") === o.devices) return true;
        if (attempt >= 4 || !paced || !fleet.quiet()) {
          quietSince = Number.POSITIVE_INFINITY;
          return false;
        }
        quietSince = Math.min(quietSince, performance.now());
        return performance.now() - quietSince > 500;
      });
      await pacing;
      await fleet.settle();
      if (count(fleet, "1.2.1") === o.devices || attempt >= 4) break;
    }
    await fleet.until(() => fleet.log.release(r121.id)!.status !== "running", "release 1.2.1 to finish");
    await fleet.settle();
    await fleet.controller.sampleNow();
    ui.ok(`${count(fleet, "1.2.1")}/${o.devices} devices on 1.2.1`);

    ui.step(7, "Audit log: which version each device runs");
    const result = summarize(fleet, b, o, rolledBack, deltas, keptBad, forced, t0);
    printAudit(ui, result);
    if (view) {
      result.viewUrl = view.url;
      await fleet.pause();
    }
    return result;
  } finally {
    if (!view) {
      await fleet.close();
      await fleet.engine.close();
    } else {
      serving = { fleet, engine: inner, view };
    }
  }
}

/** With --serve, what stays up after the story (closed by closeServed). */
let serving: { fleet: DemoFleet; engine: Engine; view: FleetView } | undefined;

export async function closeServed(): Promise<void> {
  const s = serving;
  serving = undefined;
  if (!s) return;
  await s.view.close();
  await s.fleet.close();
  await s.engine.close();
}

/** The release's fields for the controller, which re-signs them at each stage (the delta entries with them). */
function fields(fw: Firmware) {
  return { product: PRODUCT, channel: CHANNEL, version: fw.version, secureVersion: 1, url: fw.url!, size: fw.bytes.length, sha256: fw.sha256, notes: fw.note, ...(fw.patch?.entry ? { deltas: [fw.patch.entry] } : {}) };
}

function planText(stages: Stage[]): string {
  return stages.map((s) => `${s.percent}%${s.watchMs ? `, watch ${s.watchMs / 60_000} min` : ""}`).join(" → ");
}

function count(fleet: DemoFleet, version: string): number {
  return [...fleet.versions().values()].filter((v) => v === version).length;
}

function onEvent(ui: Ui, d: DemoDevice, e: AuditEvent, rolledBack: DemoResult["rolledBack"], deltas: DemoResult["deltas"], chatty: boolean): void {
  const delta = e.state === "checking" && e.to ? /^delta from \S+: (\d+) bytes instead of (\d+)/.exec(e.detail ?? "") : null;
  if (delta) {
    // The agent's own account (modules/agent.ts): the patch is all it fetches.
    deltas.push({ id: d.id, to: e.to!, patchBytes: Number(delta[1]), imageBytes: Number(delta[2]) });
    if (deltas.length === 1) ui.info(`${d.id} (${d.hardware}) updates ${e.from} → ${e.to} by delta: ${kb(Number(delta[1]))} on the wire instead of ${kb(Number(delta[2]))} (the running image is the patch's base)`);
  } else if (e.state === "rolled-back") {
    rolledBack.push({ id: d.id, hardware: d.hardware, code: e.code ?? null });
    ui.bad(`${d.id} (${d.hardware}) rolled back ${e.to ?? "?"} → ${e.from}: ${e.code ?? ""}`);
  } else if (e.state === "committed" && chatty) {
    ui.info(ui.c.dim(`${d.id} (${d.hardware}, ${d.region}) committed ${e.to ?? e.from} after its 30 s self-test`));
  } else if (e.state === "failed") {
    ui.warn(`${d.id} update to ${e.to ?? "?"} failed: ${e.code ?? ""} ${e.detail ?? ""}`);
  }
}

/** Draw the download bar until `done`. */
async function watchDownloads(ui: Ui, fleet: DemoFleet, version: string, done: () => boolean): Promise<void> {
  await fleet.until(done, `devices to reach ${version}`, () => {
    const active = fleet.devices.filter((d) => d.download);
    const written = active.reduce((n, d) => n + d.download!.written, 0);
    const total = active.reduce((n, d) => n + d.download!.total, 0);
    if (active.length) ui.bar(`downloading ${version}`, written, total, `${active.length} device(s), ${kb(written)}/${kb(total)}`);
    else ui.bar(`on ${version}      `, count(fleet, version), fleet.devices.length, "devices");
  });
  ui.clearBar();
}

/** Publish `version`, run it through `stages` on the controller, narrate each stage. */
async function rollout(ui: Ui, fleet: DemoFleet, b: BuildServer, version: string, stages: Stage[]) {
  const fw = b.firmware.get(version)!;
  const envelope = publish(b, fw, fleet.hostUrl, fleet.clock.wallTime());
  const id = ROLLOUT(version);
  const r = await fleet.controller.startRelease(fields(fw), stages, id, envelope);
  let stage = -1;
  let pacing: Promise<void> | undefined;
  const announce = (idx: number) => {
    const s = stages[idx]!;
    const inBucket = fleet.inBucket(id, s.percent);
    ui.ok(`stage ${idx + 1}/${stages.length}: ${ui.c.bold(`${s.percent}%`)} signed and announced; ${inBucket.length} of ${fleet.devices.length} device buckets < ${s.percent * 100}` +
      (inBucket.length ? ` (…${inBucket.map((d) => d.id.slice(-4)).join(" …")})` : ""));
    const fresh = inBucket.filter((d) => !d.sim.events.some((e) => e.to === version));
    const since = new Map(fresh.map((d) => [d.id, d.sim.events.length]));
    pacing = fleet.holdUntil(() => fleet.reacted(fresh, version, since), 3000);
  };
  const tick = () => {
    const cur = fleet.log.release(r.id)!;
    if (cur.stage !== stage) {
      for (let i = stage + 1; i <= cur.stage; i++) announce(i);
      stage = cur.stage;
    }
    const active = fleet.devices.filter((d) => d.download);
    if (active.length) {
      const written = active.reduce((n, d) => n + d.download!.written, 0);
      const total = active.reduce((n, d) => n + d.download!.total, 0);
      ui.bar(`downloading ${version}`, written, total, `${active.length} device(s)`);
    } else {
      const want = fleet.inBucket(id, stages[cur.stage]!.percent).length;
      ui.bar(`stage ${cur.stage + 1} ${String(stages[cur.stage]!.percent).padStart(3)}%  `, Math.min(want, count(fleet, version)), want, `on ${version}, watching`);
    }
  };
  tick();
  await fleet.until(() => fleet.log.release(r.id)!.status !== "running", `release ${r.id} to finish`, tick);
  tick();
  await pacing;
  ui.clearBar();
  await fleet.settle();
  await fleet.controller.sampleNow();
  return fleet.log.release(r.id)!;
}

function summarize(fleet: DemoFleet, b: BuildServer, o: DemoOptions, rolledBack: DemoResult["rolledBack"], deltas: DemoResult["deltas"], keptBad: string[], forced: string[], t0: number): DemoResult {
  const versions = fleet.versions();
  return {
    engine: o.engine,
    out: b.dirs.out,
    www: b.dirs.www,
    devices: fleet.devices.map((d) => ({
      id: d.id, hardware: d.hardware, region: d.region, groups: d.groups, version: versions.get(d.id) ?? null,
      path: d.sim.bootRecords.map((r) => r.version).filter((v, i, a) => i === 0 || a[i - 1] !== v),
    })),
    byGroup: fleet.log.versionsByGroup(),
    releases: fleet.log.releases().map((r) => ({ id: r.id, version: r.version, status: r.status, flagged: r.flagged, reason: r.reason, stage: r.stage, plan: r.plan.map((s) => `${s.percent}%`).join(",") })),
    rolledBack,
    deltas,
    keptBad,
    forced,
    realSeconds: Math.round((performance.now() - t0) / 100) / 10,
  };
}

function printAudit(ui: Ui, r: DemoResult): void {
  const c = ui.c;
  const versions = [...new Set(Object.values(r.byGroup).flatMap((m) => Object.keys(m)))].sort();
  ui.table([["group", ...versions], ...Object.entries(r.byGroup).sort().map(([g, m]) => [g, ...versions.map((v) => m[v] ?? 0)])]);
  ui.info("");
  const shown = r.devices.slice(0, 24);
  ui.table([["device", "hardware", "region", "now", "path (boots)"], ...shown.map((d) => [d.id, d.hardware, d.region, d.version ?? "?", d.path.join(" → ")])]);
  if (r.devices.length > shown.length) ui.info(c.dim(`… ${r.devices.length - shown.length} more: xsota fleet status --db ${r.out}/audit.db`));
  ui.info("");
  ui.table([["release", "plan", "status", "note"], ...r.releases.map((x) => [x.version, x.plan, x.flagged ? `${x.status} (flagged)` : x.status,
    x.reason ?? (x.version === "1.2.1" ? `forced to ${r.forced.length} devices in ${Object.keys(r.byGroup).filter((g) => g.startsWith("esp32")).length} groups` : "")])]);
}
