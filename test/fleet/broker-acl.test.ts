/*
 * The shipped mosquitto ACL (deploy/mosquitto/acl) on a real mosquitto with a password file made
 * here: a device may publish only under its own devices/<id>/ and read only its own cmd and the
 * release announcements; the controller reads every device; a client without a user name, or
 * with a wrong password, is refused. Each refusal is checked against a positive control sent
 * after it on the same connection (MQTT keeps one client's messages in order), so no sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { VirtualClock } from "../../backend/clock";
import { SimChip } from "../../host-sim/chip/chip";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan } from "../../backend/fleet/controller";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { parseConfig } from "../../modules/config";
import { layerConfig, provision, readProvisioned, withDeviceId } from "../../modules/provision";
import { startReporter } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { devicePorts, simSystem, realWait } from "./helpers";
import { aclBroker, hasMosquitto, peer, type Peer } from "./acl-broker";

const topicsOf = (p: Peer) => p.messages.map((m) => `${m.topic} ${m.payload}`);

describe.skipIf(!hasMosquitto)("the shipped mosquitto ACL (deploy/mosquitto/acl) on a real mosquitto", () => {
  let broker: Broker, dir: string;
  const peers: Peer[] = [];
  const open = (...a: Parameters<typeof peer>) => {
    const p = peer(...a);
    peers.push(p);
    return p;
  };

  beforeAll(async () => {
    ({ broker, dir } = await aclBroker({ "xsota-controller": "ctl-pw", "dev-a": "pw-a", "dev-b": "pw-b" }));
  });
  afterAll(async () => {
    for (const p of peers) p.client.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a client without a user name and one with a wrong password (CONNACK 5), accepts the right one", async () => {
    const anon = open(broker, "anon");
    await expect(anon.ready).rejects.toThrow(/MQTT_CONNECT: broker refused \(return code 5\)/);
    const wrong = open(broker, "dev-a", "dev-a", "pw-b");
    await expect(wrong.ready).rejects.toThrow(/return code 5/);
    const unknown = open(broker, "dev-c", "dev-c", "pw-a");
    await expect(unknown.ready).rejects.toThrow(/return code 5/);
    const right = open(broker, "dev-a", "dev-a", "pw-a");
    await right.ready;
    expect(right.client.connected).toBe(true);
    right.client.close();
  });

  it("device A publishes under its own id only: its forged events, state and announcement for B never reach the controller or B", async () => {
    const controller = open(broker, "xsota-controller", "xsota-controller", "ctl-pw", ["devices/+/events", "devices/+/state", "devices/+/online"]);
    const b = open(broker, "dev-b", "dev-b", "pw-b", ["releases/thermo/stable", "devices/dev-b/cmd"]);
    const a = open(broker, "dev-a", "dev-a", "pw-a");
    await Promise.all([controller.ready, b.ready, a.ready]);
    a.client.publish("devices/dev-b/events", JSON.stringify({ seq: 1, state: "committed", forged: true }), { qos: 1 });
    a.client.publish("devices/dev-b/state", "{\"forged\":true}", { qos: 1, retain: true });
    a.client.publish("devices/dev-b/cmd", "{\"cmd\":\"force\"}", { qos: 1 });
    a.client.publish("releases/thermo/stable", "{\"url\":\"https://evil.example/m.json\"}", { qos: 1, retain: true });
    // the positive controls, after the forgeries on the same connection
    a.client.publish("devices/dev-a/events", JSON.stringify({ seq: 1, state: "idle" }), { qos: 1 });
    await realWait(() => controller.messages.some((m) => m.topic === "devices/dev-a/events"));
    const ctl = open(broker, "xsota-controller-2", "xsota-controller", "ctl-pw");
    await ctl.ready;
    ctl.client.publish("devices/dev-b/cmd", "real-cmd", { qos: 1 });
    ctl.client.publish("releases/thermo/stable", "real-announcement", { qos: 1, retain: false });
    await realWait(() => b.messages.some((m) => m.payload === "real-announcement") && b.messages.some((m) => m.payload === "real-cmd"));
    expect(topicsOf(controller)).toEqual([`devices/dev-a/events ${JSON.stringify({ seq: 1, state: "idle" })}`]);
    expect(topicsOf(b)).toEqual(["devices/dev-b/cmd real-cmd", "releases/thermo/stable real-announcement"]);
  });

  it("device A reads its own cmd and the announcements, never B's cmd nor B's events, even by wildcard", async () => {
    const a = open(broker, "dev-a-reader", "dev-a", "pw-a", ["devices/dev-b/cmd", "devices/+/cmd", "devices/dev-b/events", "devices/#", "releases/#"]);
    const b = open(broker, "dev-b-writer", "dev-b", "pw-b");
    const ctl = open(broker, "xsota-controller-3", "xsota-controller", "ctl-pw", ["devices/dev-b/events"]);
    await Promise.all([a.ready, b.ready, ctl.ready]);
    b.client.publish("devices/dev-b/events", "b-event", { qos: 1 });
    await realWait(() => ctl.messages.some((m) => m.payload === "b-event"));
    ctl.client.publish("devices/dev-b/cmd", "b-cmd", { qos: 1 });
    ctl.client.publish("devices/dev-a/cmd", "a-cmd", { qos: 1 });
    ctl.client.publish("releases/thermo/beta", "announce", { qos: 1 });
    await realWait(() => a.messages.some((m) => m.payload === "announce"));
    // one copy per matching subscription is possible (devices/+/cmd and devices/#): only its own cmd
    expect(new Set(topicsOf(a))).toEqual(new Set(["devices/dev-a/cmd a-cmd", "releases/thermo/beta announce"]));
  });
});

describe.skipIf(!hasMosquitto)("the agent's own reporter and the controller under the shipped ACL (real mosquitto)", () => {
  let broker: Broker | undefined, dir = "", work = "";
  const cleanup: (() => void)[] = [];
  afterAll(async () => {
    for (const c of cleanup.splice(0)) c();
    await broker?.close();
    for (const d of [dir, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("a device provisioned with its id as user name reports, fires its will, reads the announcement and its signed cmd; the controller sees it all", async () => {
    ({ broker, dir } = await aclBroker({ "xsota-controller": "ctl-pw", "thermo-0042": "s3cret" }));
    work = mkdtempSync(join(tmpdir(), "xsota-acl-agent-"));
    const key = generateKey("ecdsa-p256");
    const clock = new VirtualClock();
    const log = new AuditLog(join(work, "audit.db"));
    const controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 50, credentials: { username: "xsota-controller", password: "ctl-pw" } });
    cleanup.push(() => controller.close(), () => log.close());

    const chip = SimChip.create({});
    provision(chip.store(), { deviceId: "thermo-0042", groups: ["lab"], username: "thermo-0042", password: "s3cret", host: broker.host, port: broker.port });
    const prov = readProvisioned(chip.store());
    const config = parseConfig(layerConfig({ product: "thermo", manifestUrl: "https://updates.example/m.json", trustedKeys: [keyConfigOf(key)], mqtt: { host: "broker.example", port: 1 } }, prov, { checkIntervalMs: 0 }));
    const checks: { force?: boolean; manifest?: Uint8Array }[] = [];
    const mqtt = new TcpMqttPort({ clock });
    const ports = { ...devicePorts("aabbccddeeff", clock, chip.store(), mqtt), system: withDeviceId(simSystem("aabbccddeeff"), prov.deviceId) };
    const agent = { running: { version: "1.0.0", secureVersion: 1, slot: 0, project: "thermo" }, check: async (o: { force?: boolean; manifest?: Uint8Array }) => void checks.push(o) };
    const reporter = startReporter(ports, config, agent, new Outbox(chip.store(), { capacity: 8 }), { reconnect: { baseMs: 60_000, maxMs: 60_000 } });
    cleanup.push(() => reporter.close());

    await realWait(() => log.device("thermo-0042")?.version === "1.0.0" && log.device("thermo-0042")?.online === true && (log.device("thermo-0042")?.groups.length ?? 0) > 0, 10_000);
    expect(log.device("thermo-0042")!.groups).toEqual(["lab"]);
    // the retained announcement on releases/thermo/stable reaches the device and is checked
    await controller.startRelease({ product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/t.bin", size: 1, sha256: "ab".repeat(32) }, parsePlan("100:10m"), "r-acl");
    await realWait(() => checks.some((c) => c.manifest !== undefined), 10_000);
    // a signed check on devices/thermo-0042/cmd
    const before = checks.length;
    expect(await controller.checkNow()).toEqual(["thermo-0042"]);
    await realWait(() => checks.length > before && checks.at(-1)!.manifest === undefined, 10_000);
    // an abrupt drop: the broker publishes the device's will (devices/<id>/online "0"), which the ACL lets it write
    mqtt.powerOff();
    await realWait(() => log.device("thermo-0042")?.online === false, 10_000);
    expect(controller.parked).toBe(0);
  });
});
