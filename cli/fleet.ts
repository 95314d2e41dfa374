/*
 * xsota fleet: the controller (run), its views of the audit log (status, history), commands to a
 * running controller (halt, resume, force, check), and the fleet simulator (sim).
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { expiringAnchors } from "../backend/release/roles-tool";
import { OtaError } from "../modules/errors";
import type { ClockPort } from "../modules/ports";
import { verifyManifest } from "../modules/manifest";
import { loadPrivateKey, loadPublicKey, trustedKeyOf } from "../backend/release/keys";
import { nodeCrypto } from "../backend/crypto";
import type { AuditStore } from "../backend/fleet/audit-store";
import { openAuditStore } from "../backend/fleet/open-audit";
import { FleetController, parsePlan, type ReleaseFields } from "../backend/fleet/controller";
import { startFleetView, fleetStatus } from "../backend/fleet/web";
import { startBroker, type Broker, type BrokerKind } from "../backend/mqtt/broker";
import { parse, printJson, requireFile, requireOption, color, EXIT, type Command } from "./common";

const HELP = `Usage: xsota fleet <run|status|history|halt|resume|force|check|pause|cancel|download-only|install|sim> [options]

  run       publish a release through a staged rollout plan and watch it
  status    which version each device runs, per group (from the audit log)
  history   every step one device took
  halt      stop a running rollout (re-signed at 0 %)       (talks to a running controller)
  resume    resume a halted rollout at its stage              (talks to a running controller)
            with --device/--group: resume those devices' paused downloads
  force     force the current release onto a group          (talks to a running controller)
  check     ask devices (or a group) to check now           (talks to a running controller)
  pause     pause the download in flight on devices           (signed; talks to a running controller)
  cancel    cancel the update in flight (running image and otadata untouched)
  download-only  download and verify the next update, then wait for install (or the window)
  install   install what download-only held
  sim       run the fleet simulator (N devices, seeded faults) and print its report

Common options:
  --db F|URL             the audit log: a SQLite file (default fleet.db) or postgres://user@host:port/db
                         (several controllers may share one PostgreSQL database)
  --json                 machine-readable output

run options:
  --manifest F           a signed release envelope (xsota manifest); its fields are re-signed per stage
  -k, --key F            single-key mode: the release signing key (PEM); each stage is re-signed with it
  --rollout-key F        roles mode (devices with a root, xsota root): the rollout key; each stage is a
                         rollout document over the --manifest, which the release key signed
  --commands-key F       roles mode: the commands key (per-device control)
  --release-pub F        roles mode: the release key's public half, to check --manifest before it starts
  --plan P               stages PERCENT[:WATCH], watch in ms/s/m/h (default 5:10m,25:10m,100)
  --rollout-id R         constant across stages (default <product>-<version>-<time>)
  --broker URL           mqtt://[USER@]host:port of a running broker (password: XSOTA_MQTT_PASSWORD), or:
  --embedded KIND        start a broker here: aedes (default) or mosquitto
  --mqtt-port N          port for --embedded (default 1883)
  --publish F            also write each stage's envelope to F (the file devices' manifestUrl serves)
  --max-failure-rate R   halt when failed/started devices exceed R (default 0.2)
  --min-failures N       ...and at least N devices failed (default 3)
  --http-port N          fleet view and command API on 127.0.0.1:N (default 8080; 0 = any)
  --client-id ID         the controller's MQTT client id, its persistent session (default xsota-controller;
                         one per controller when several share a database)
  --stay                 keep running after the release is done

status options:        --root F  the devices' signed root: warns about TLS anchors that expire within 90 days
force/check options:   --group G
pause/resume/cancel/download-only/install:  --device ID (repeatable) or --group G
sim options:           --devices N (1000)  --seed S (1)  --broker-kind aedes|mosquitto  --plan P  --db F|URL (default: a temp file)
                       --image-kb N (32)  --bad-hardware-share R (0.1)  --flaky-share R (0.05)  --power-cut-share R (0.02)
                       --view (serve the fleet view while it runs)

Examples:
  xsota fleet sim --devices 20 --seed 7 --db fleet.db     # 20 simulated devices, their audit log kept in fleet.db
  xsota fleet status --db fleet.db
  xsota fleet history 240ac4000001 --json
  mkdir -p www/thermo/stable && xsota fleet run --manifest release.json --key release.pem \
    --embedded aedes --publish www/thermo/stable/release.json --http-port 0 --stay &   # the controller the next lines talk to
  xsota fleet halt --db fleet.db
  xsota fleet resume --db fleet.db
  xsota fleet force --group lab --db fleet.db
  xsota fleet pause --device 240ac4000001 --db fleet.db
  xsota fleet resume --device 240ac4000001 --db fleet.db
  xsota fleet download-only --group field && xsota fleet install --group field
  xsota fleet cancel --group lab --json
  xsota fleet sim --devices 1000 --seed 7 --json
`;

const realClock: ClockPort = {
  now: () => performance.now(),
  wallTime: () => Date.now(),
  setTimeout: (cb, ms) => setTimeout(cb, ms) as unknown as number,
  clearTimeout: (id) => clearTimeout(id as unknown as NodeJS.Timeout),
};

function openLog(spec: string, mustExist: boolean): Promise<AuditStore> {
  return openAuditStore(spec, { mustExist });
}

async function api(dbPath: string, path: string): Promise<unknown> {
  const log = await openLog(dbPath, true);
  const base = await log.meta("api");
  const token = await log.meta("api-token");
  await log.close();
  if (!base) throw new OtaError("HTTP_CONNECT", "no controller has run on this audit log");
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { method: "POST", headers: { authorization: `Bearer ${token ?? ""}` } });
  } catch (e) {
    throw new OtaError("HTTP_CONNECT", `controller at ${base} is not running (${(e as Error).message})`);
  }
  const body = (await res.json()) as { code?: string; error?: string };
  if (!res.ok) throw new OtaError(body.code === "USAGE" || body.code === "API_FORBIDDEN" ? body.code : "INTERNAL", body.error ?? String(res.status));
  return body;
}

/** halt / resume of the running release. */
async function releaseCommand(db: string, sub: "halt" | "resume", values: Record<string, unknown>): Promise<number> {
  const r = await api(db, `/api/${sub}`);
  if (values.json) printJson(r);
  else process.stdout.write(`${sub === "halt" ? "halted" : "resumed"} ${(r as { id: string }).id}\n`);
  return EXIT.OK;
}

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ")).join("\n");
}

async function run(values: Record<string, unknown>): Promise<number> {
  const envelope = readFileSync(requireFile(values.manifest as string | undefined, "--manifest"));
  // roles mode: the controller holds only the online keys; the release key stays on the build server
  const roles = values["rollout-key"] !== undefined
    ? { rollout: loadPrivateKey(requireFile(values["rollout-key"] as string, "--rollout-key")), commands: loadPrivateKey(requireFile(values["commands-key"] as string | undefined, "--commands-key")) }
    : undefined;
  if (roles && values.key !== undefined) throw new OtaError("USAGE", "--key is single-key mode; roles mode takes --rollout-key, --commands-key and --release-pub");
  const key = roles ? undefined : loadPrivateKey(requireFile(values.key as string | undefined, "--key"));
  const releaseKey = roles ? loadPublicKey(requireFile(values["release-pub"] as string | undefined, "--release-pub")) : key!;
  const { manifest } = verifyManifest(new Uint8Array(envelope), [trustedKeyOf(releaseKey)], nodeCrypto);
  const { schema: _s, rollout: _r, force: _f, ...fields } = manifest;
  const plan = parsePlan((values.plan as string) ?? "5:10m,25:10m,100");
  let broker: Broker | undefined;
  let host: { host: string; port: number };
  let credentials: { username: string; password: string } | undefined;
  if (values.broker) {
    const u = new URL(values.broker as string);
    if (u.protocol !== "mqtt:") throw new OtaError("USAGE", "--broker must be mqtt://host:port");
    host = { host: u.hostname, port: Number(u.port || 1883) };
    // mqtt://xsota-controller@host:port, the password from XSOTA_MQTT_PASSWORD (not argv, which ps shows)
    if (u.username) credentials = { username: decodeURIComponent(u.username), password: process.env.XSOTA_MQTT_PASSWORD ?? decodeURIComponent(u.password) };
  } else {
    const kind = ((values.embedded as string) ?? "aedes") as BrokerKind;
    if (kind !== "aedes" && kind !== "mosquitto") throw new OtaError("USAGE", "--embedded aedes|mosquitto");
    broker = await startBroker({ kind, port: Number(values["mqtt-port"] ?? 1883) });
    host = broker;
    process.stderr.write(`broker ${kind} on ${broker.url}\n`);
  }
  let log: AuditStore;
  try {
    log = await openLog((values.db as string) ?? "fleet.db", false);
  } catch (e) {
    await broker?.close();
    throw e;
  }
  const publishPath = values.publish as string | undefined;
  let controller: FleetController | undefined;
  let view: Awaited<ReturnType<typeof startFleetView>>;
  try {
    controller = await FleetController.start({
      broker: host, log, clock: realClock, ...(roles ? { roles } : { signingKey: key! }), ...(credentials ? { credentials } : {}), ...(values["client-id"] ? { clientId: values["client-id"] as string } : {}),
      thresholds: { maxFailureRate: Number(values["max-failure-rate"] ?? 0.2), minFailures: Number(values["min-failures"] ?? 3) },
      publishManifest: publishPath ? (env) => { writeFileSync(`${publishPath}.tmp`, env); renameSync(`${publishPath}.tmp`, publishPath); } : undefined,
    });
    view = await startFleetView(controller, { port: Number(values["http-port"] ?? 8080) });
  } catch (e) {
    // What started before the failure (the embedded broker, the controller's connection) stops with it.
    controller?.close();
    await log.close();
    await broker?.close();
    throw e;
  }
  await log.setMeta("api-token", view.token);
  await log.setMeta("api", view.url);
  const cur = await controller.current();
  const r = cur && cur.status !== "done" && cur.version === fields.version ? cur : await controller.startRelease(fields as ReleaseFields, plan, values["rollout-id"] as string | undefined, roles ? new Uint8Array(envelope) : undefined);
  process.stderr.write(`release ${r.id}: ${plan.map((s) => `${s.percent}%`).join(" -> ")}; fleet view ${view.url}\n`);
  let lastLine = "";
  const report = async () => {
    const s = await fleetStatus(controller);
    const line = `${s.release?.status} stage ${(s.release?.stage ?? 0) + 1}/${plan.length} at ${s.release?.percent}% | ${Object.entries(s.totals).map(([v, n]) => `${v}: ${n}`).join(", ")} | failures ${s.failures.length}`;
    if (line !== lastLine) process.stderr.write(`${line}\n`);
    lastLine = line;
  };
  let reporting = false;
  const reportSoon = () => {
    if (reporting) return;
    reporting = true;
    setTimeout(() => void report().catch(() => {}).finally(() => { reporting = false; }), 200);
  };
  controller.onChange(reportSoon);
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      reportSoon();
      void controller.current().then((c) => {
        if (c?.status === "done" && !values.stay) {
          clearInterval(t);
          resolve();
        }
      }, () => {});
    }, 1000);
    process.once("SIGINT", () => {
      clearInterval(t);
      resolve();
    });
  });
  await controller.settled();
  const final = await fleetStatus(controller);
  const flagged = (await controller.current())?.flagged ?? false;
  controller.close();
  await view.close();
  await log.close();
  await broker?.close();
  if (values.json) printJson(final);
  return flagged ? EXIT.FAILED : EXIT.OK;
}

async function status(values: Record<string, unknown>): Promise<number> {
  const log = await openLog((values.db as string) ?? "fleet.db", true);
  const s = await fleetStatus({ log, current: async () => (await log.releases()).at(-1) });
  await log.close();
  // TLS trust anchors of the devices' root (--root F): the ones that expire within 90 days
  const rootFile = values.root as string | undefined;
  const anchors = rootFile ? expiringAnchors(new Uint8Array(readFileSync(requireFile(rootFile, "--root"))), Date.now()) : [];
  if (values.json) {
    printJson(rootFile ? { ...s, expiringAnchors: anchors } : s);
    return EXIT.OK;
  }
  for (const a of anchors) {
    process.stdout.write(`${color.yellow("warning")} TLS anchor ${a.id} ${a.days < 0 ? "expired" : "expires"} ${new Date(a.notAfter).toISOString().slice(0, 10)} (${a.days < 0 ? `${-a.days} days ago` : `in ${a.days} days`}): sign a root that adds the next CA before it does\n`);
  }
  const r = s.release;
  process.stdout.write(r ? `release ${r.id} (${r.version}): ${r.status}${r.flagged ? color.red(" FLAGGED") : ""}, stage ${r.stage + 1}/${r.plan.length} at ${r.percent} %${r.reason ? ` (${r.reason})` : ""}\n` : "no release\n");
  process.stdout.write(`${s.devices} devices, ${s.online} online, ${s.failures.length} failed this release\n`);
  const held = ([["paused", s.control.paused], ["waiting to install", s.control.awaitingInstall], ["waiting to reboot", s.control.awaitingReboot]] as const)
    .filter(([, ids]) => ids.length).map(([what, ids]) => `${what}: ${ids.length > 8 ? `${ids.slice(0, 8).join(", ")} and ${ids.length - 8} more` : ids.join(", ")}`);
  process.stdout.write(held.length ? held.join("; ") + "\n" : "");
  const ing = s.ingest;
  if (ing.conflicts || ing.parked) {
    process.stdout.write(color.red(`ingest: ${ing.conflicts} conflicting events (same device and seq, other content), ${ing.parked} messages parked`) + "\n");
    for (const c of ing.recentConflicts) process.stdout.write(`  conflict ${c.device} seq ${c.seq}: ${c.content.slice(0, 120)}\n`);
    for (const p of ing.recentParked) process.stdout.write(`  parked ${p.topic}: ${p.reason} (${JSON.stringify(p.payload.slice(0, 60))})\n`);
  }
  process.stdout.write("\n");
  const versions = Object.keys(s.totals).sort();
  const rows = [["group", ...versions, "total"]];
  for (const [g, m] of Object.entries(s.byGroup).sort()) rows.push([g, ...versions.map((v) => String(m[v] ?? 0)), String(Object.values(m).reduce((a, b) => a + b, 0))]);
  rows.push(["(all)", ...versions.map((v) => String(s.totals[v] ?? 0)), String(s.devices)]);
  process.stdout.write(table(rows) + "\n");
  return EXIT.OK;
}

async function history(values: Record<string, unknown>, device: string | undefined): Promise<number> {
  if (!device) throw new OtaError("USAGE", "history needs a device id");
  const log = await openLog((values.db as string) ?? "fleet.db", true);
  const events = await log.history(device);
  const d = await log.device(device);
  await log.close();
  if (!d && !events.length) throw new OtaError("USAGE", `no device ${device} in the audit log`);
  if (values.json) {
    printJson({ device: d, events });
    return EXIT.OK;
  }
  if (d) process.stdout.write(`${device}: ${d.version ?? "?"} (slot ${d.slot ?? "?"}), ${d.hardware ?? "?"}, groups ${d.groups.join(",") || "-"}, ${d.online ? "online" : "offline"}\n`);
  const rows = [["seq", "time", "state", "from", "to", "code", "detail"]];
  for (const e of events) {
    rows.push([String(e.seq), e.time ? new Date(e.time).toISOString() : "-", e.state + (e.progress !== undefined ? ` ${e.progress}%` : ""), e.from ?? "", e.to ?? "", e.code ?? "", e.detail ?? ""]);
  }
  process.stdout.write(table(rows) + "\n");
  return EXIT.OK;
}

async function sim(values: Record<string, unknown>): Promise<number> {
  const { runFleetSim } = await import("../host-sim/lab/fleet-sim");
  const { formatReport } = await import("../host-sim/lab/fleet-sim-report");
  const report = await runFleetSim({
    devices: Number(values.devices ?? 1000),
    seed: Number(values.seed ?? 1),
    brokerKind: ((values["broker-kind"] as string) ?? "aedes") as BrokerKind,
    plan: (values.plan as string) ?? "5:10m,25:10m,100:10m",
    imageBytes: Number(values["image-kb"] ?? 32) * 1024,
    badHardwareShare: Number(values["bad-hardware-share"] ?? 0.1),
    flakyShare: Number(values["flaky-share"] ?? 0.05),
    powerCutShare: Number(values["power-cut-share"] ?? 0.02),
    ...(values.db ? { dbPath: values.db as string } : {}),
    progress: (line) => process.stderr.write(line + "\n"),
    ...(values.view ? { onView: (url: string) => process.stderr.write(`fleet view ${url}\n`) } : {}),
  });
  if (values.json) printJson(report);
  else process.stdout.write(formatReport(report) + "\n");
  return report.release.status === "done" || report.release.flagged ? EXIT.OK : EXIT.FAILED;
}

export const command: Command = {
  name: "fleet",
  summary: "fleet controller: rollouts, forced updates, audit log, fleet view",
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      db: { type: "string" }, json: { type: "boolean" }, manifest: { type: "string" }, key: { type: "string", short: "k" },
      "rollout-key": { type: "string" }, "commands-key": { type: "string" }, "release-pub": { type: "string" },
      plan: { type: "string" }, "rollout-id": { type: "string" }, broker: { type: "string" }, embedded: { type: "string" },
      "mqtt-port": { type: "string" }, publish: { type: "string" }, "max-failure-rate": { type: "string" }, "min-failures": { type: "string" },
      "http-port": { type: "string" }, stay: { type: "boolean" }, group: { type: "string" }, devices: { type: "string" }, seed: { type: "string" },
      "broker-kind": { type: "string" }, "image-kb": { type: "string" }, "bad-hardware-share": { type: "string" }, "flaky-share": { type: "string" },
      "power-cut-share": { type: "string" }, view: { type: "boolean" }, "client-id": { type: "string" }, device: { type: "string", multiple: true }, root: { type: "string" },
    });
    const [sub, arg] = positionals;
    const db = (values.db as string) ?? "fleet.db";
    switch (sub) {
      case "run":
        return run(values);
      case "status":
        return status(values);
      case "history":
        return history(values, arg);
      case "resume":
      case "pause":
      case "cancel":
      case "download-only":
      case "install": {
        const devices = (values.device as string[] | undefined) ?? [];
        const group = values.group as string | undefined;
        if (sub === "resume" && !devices.length && group === undefined) return releaseCommand(db, sub, values);
        if (!devices.length && group === undefined) throw new OtaError("USAGE", `${sub} needs --device ID or --group G`);
        const q = new URLSearchParams();
        for (const d of devices) q.append("device", d);
        if (group !== undefined) q.set("group", group);
        const r = (await api(db, `/api/control/${sub}?${q}`)) as { devices: string[] };
        if (values.json) printJson(r);
        else process.stdout.write(`${sub} sent to ${r.devices.length} devices${group ? ` of ${group}` : ""}\n`);
        return EXIT.OK;
      }
      case "halt":
        return releaseCommand(db, sub, values);
      case "force":
      case "check": {
        const group = sub === "force" ? requireOption(values.group as string | undefined, "group") : (values.group as string | undefined);
        const r = (await api(db, `/api/${sub}${group ? `?group=${encodeURIComponent(group)}` : ""}`)) as { devices: string[] };
        if (values.json) printJson(r);
        else process.stdout.write(`${sub === "force" ? "forced" : "asked"} ${r.devices.length} devices${group ? ` of ${group}` : ""}\n`);
        return EXIT.OK;
      }
      case "sim":
        return sim(values);
      default:
        throw new OtaError("USAGE", sub ? `unknown subcommand '${sub}'` : "missing subcommand");
    }
  },
};
