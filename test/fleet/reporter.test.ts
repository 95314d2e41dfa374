import { describe, it, expect, afterEach } from "vitest";
import { startBroker, findMosquitto, type Broker, type BrokerKind } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { startReporter, type ReporterAgent, type Reporter } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { parseConfig, type AppConfig } from "../../modules/config";
import type { AuditEvent } from "../../modules/events";
import { generateKey } from "../../backend/release/keys";
import { keyConfigOf } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { toBase64 } from "../../modules/bytes";
import { MemStore, devicePorts, subscribe, realWait } from "./helpers";
import { controlMessage } from "../../backend/fleet/control";
import { startUpdateHost } from "../../backend/update-host";
import { makeCa, makeServerCert } from "../../backend/release/pki";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { createServer, type AddressInfo } from "node:net";
import * as mqttPacket from "mqtt-packet";

const hasMosquitto = findMosquitto() !== undefined;
const kinds: BrokerKind[] = ["aedes", "mosquitto"];
const key = generateKey("ecdsa-p256");
const rogue = generateKey("ecdsa-p256");

function config(broker: Broker): AppConfig {
  return parseConfig({
    product: "thermo",
    channel: "stable",
    manifestUrl: "https://127.0.0.1:1/thermo/stable/manifest.json",
    trustedKeys: [keyConfigOf(key)],
    hardware: "esp32-rev3",
    region: "eu",
    groups: ["lab"],
    checkIntervalMs: 0,
    mqtt: { host: broker.host, port: broker.port, keepaliveMs: 30_000 },
  });
}

class FakeAgent implements ReporterAgent {
  running = { version: "1.0.0", secureVersion: 1, slot: 0, project: "thermo" };
  checks: { force?: boolean; manifest?: Uint8Array }[] = [];
  busy = 0;
  async check(o: { force?: boolean; manifest?: Uint8Array } = {}) {
    this.checks.push(o);
    if (this.busy > 0) {
      this.busy--;
      return { state: "downloading", code: "POLICY_BUSY" };
    }
    return { state: "idle" };
  }
}

function event(outbox: Outbox, clock: VirtualClock, i: number): AuditEvent {
  return outbox.append({ time: clock.wallTime(), uptime: clock.now(), state: "downloading", from: "1.0.0", to: "1.1.0", progress: i });
}

const manifest = (over: object = {}, k = key) =>
  createManifest({ product: "thermo", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/x.bin", size: 4096, sha256: "00".repeat(32), keys: [k], ...over });

const seqsOf = (msgs: { topic: string; payload: string }[], id: string) =>
  msgs.filter((m) => m.topic === `devices/${id}/events`).map((m) => (JSON.parse(m.payload) as AuditEvent).seq);

describe.each(kinds)("reporter on the device (%s)", (kind) => {
  let broker: Broker | undefined;
  const reporters: Reporter[] = [];
  afterEach(async () => {
    for (const r of reporters.splice(0)) r.close();
    await broker?.close();
    broker = undefined;
  });
  const skip = kind === "mosquitto" && !hasMosquitto;

  it.skipIf(skip)("publishes version, state and online on boot; the will marks it offline after a power cut", async () => {
    broker = await startBroker({ kind });
    const watch = subscribe(broker, "watch", ["devices/#"]);
    await watch.ready;
    const clock = new VirtualClock();
    const mqtt = new TcpMqttPort({ clock });
    const store = new MemStore();
    const outbox = new Outbox(store, { capacity: 16 });
    const r = startReporter(devicePorts("aa01", clock, store, mqtt), config(broker), new FakeAgent(), outbox);
    reporters.push(r);
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    await realWait(() => watch.messages.some((m) => m.topic === "devices/aa01/state"));
    expect(watch.messages).toContainEqual({ topic: "devices/aa01/version", payload: "1.0.0" });
    expect(watch.messages).toContainEqual({ topic: "devices/aa01/online", payload: "1" });
    const state = JSON.parse(watch.messages.find((m) => m.topic === "devices/aa01/state")!.payload);
    expect(state).toMatchObject({ version: "1.0.0", slot: 0, secure_version: 1, hardware: "esp32-rev3", region: "eu", groups: ["lab"], last: null });
    mqtt.powerOff();
    await realWait(() => watch.messages.some((m) => m.topic === "devices/aa01/online" && m.payload === "0"));
    watch.client.close();
  });

  it.skipIf(skip)("delivers every outbox event exactly once across a power cut and a broker restart", async () => {
    broker = await startBroker({ kind });
    const log = subscribe(broker, "recorder", ["devices/+/events"], false);
    await log.ready;
    const clock = new VirtualClock();
    const store = new MemStore();
    let mqtt = new TcpMqttPort({ clock });
    let outbox = new Outbox(store, { capacity: 64 });
    let r = startReporter(devicePorts("bb02", clock, store, mqtt), config(broker), new FakeAgent(), outbox, { reconnect: { baseMs: 500, maxMs: 4000 } });
    reporters.push(r);
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    for (let i = 1; i <= 5; i++) r.onEvent(event(outbox, clock, i));
    // Power cut right after publishing: some PUBACKs never reach the device, so it resends those.
    mqtt.powerOff();
    r.close();
    const left = outbox.pending().length;
    mqtt = new TcpMqttPort({ clock });
    outbox = new Outbox(store, { capacity: 64 });
    expect(outbox.pending().length).toBe(left);
    r = startReporter(devicePorts("bb02", clock, store, mqtt), config(broker), new FakeAgent(), outbox, { reconnect: { baseMs: 500, maxMs: 4000 } });
    reporters.push(r);
    await driveUntil(clock, () => r.connected && outbox.pending().length === 0, { maxRealMs: 5000 });

    // Broker outage: the device keeps producing events, they wait in the outbox.
    await broker.stop();
    await driveUntil(clock, () => !r.connected, { maxRealMs: 5000 });
    for (let i = 6; i <= 12; i++) {
      r.onEvent(event(outbox, clock, i));
      clock.advance(700); // reconnect attempts fail meanwhile
    }
    await new Promise((res) => setTimeout(res, 50));
    expect(outbox.pending().length).toBe(7);
    await broker.start();
    await driveUntil(clock, () => r.connected && outbox.pending().length === 0, { maxRealMs: 10_000 });
    // The recorder reconnects with its persistent session and receives what was queued for it.
    const log2 = subscribe(broker, "recorder", [], false);
    await log2.ready;
    const all = () => [...log.messages, ...log2.messages];
    await realWait(() => new Set(seqsOf(all(), "bb02")).size === 12, 10_000);
    const seqs = seqsOf(all(), "bb02");
    log2.client.close();
    expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    log.client.close();
  });

  it.skipIf(skip)("drain waits for the events' PUBACKs, and returns at once when nothing is pending or the link is down", async () => {
    broker = await startBroker({ kind });
    const clock = new VirtualClock();
    const store = new MemStore();
    const mqtt = new TcpMqttPort({ clock });
    const outbox = new Outbox(store, { capacity: 64 });
    const r = startReporter(devicePorts("dd04", clock, store, mqtt), config(broker), new FakeAgent(), outbox, { reconnect: { baseMs: 60_000, maxMs: 60_000 } });
    reporters.push(r);
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    // The burst an update ends with: the events go out, then the restart waits for their acks.
    for (let i = 1; i <= 12; i++) r.onEvent(event(outbox, clock, i));
    expect(outbox.pending().length).toBeGreaterThan(0);
    let drained = false;
    void r.drain(3000).then(() => (drained = true));
    const t0 = clock.now();
    await driveUntil(clock, () => drained, { maxRealMs: 5000 });
    expect(outbox.pending()).toEqual([]);
    expect(clock.now() - t0).toBeLessThan(3000);
    // Nothing pending: at once.
    let now = false;
    void r.drain(3000).then(() => (now = true));
    await Promise.resolve();
    expect(now).toBe(true);
    // The link drops with events unacknowledged: drain gives up when the link goes, not later.
    await broker.stop();
    await driveUntil(clock, () => !r.connected, { maxRealMs: 5000 });
    r.onEvent(event(outbox, clock, 13));
    let gone = false;
    void r.drain(3000).then(() => (gone = true));
    await Promise.resolve();
    expect(gone).toBe(true);
    expect(outbox.pending().length).toBe(1); // kept for the next connection
  });

  it.skipIf(skip)("hands signed announcements to the agent, ignores and reports forged ones, obeys cmd", async () => {
    broker = await startBroker({ kind });
    const watch = subscribe(broker, "watch2", ["devices/+/events", "devices/+/state"]);
    await watch.ready;
    const ctl = subscribe(broker, "ctl", []);
    await ctl.ready;
    const clock = new VirtualClock();
    const store = new MemStore();
    const outbox = new Outbox(store, { capacity: 16 });
    const agent = new FakeAgent();
    const port = new TcpMqttPort({ clock });
    const r = startReporter(devicePorts("cc03", clock, store, port), config(broker), agent, outbox);
    reporters.push(r);
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    await port.subscribed();

    const good = manifest();
    ctl.client.publish("releases/thermo/stable", good, { qos: 1, retain: true });
    await realWait(() => agent.checks.length === 1);
    expect(Buffer.from(agent.checks[0]!.manifest!).equals(Buffer.from(good))).toBe(true);
    expect(agent.checks[0]!.force).toBeUndefined();
    ctl.client.publish("releases/thermo/stable", good, { qos: 1, retain: true }); // same bytes again: skipped
    ctl.client.publish("releases/thermo/stable", manifest({}, rogue), { qos: 1, retain: true });
    ctl.client.publish("releases/thermo/stable", '{"payload":"e30=","signatures":[]}', { qos: 1, retain: true });
    ctl.client.publish("releases/thermo/stable", "\xff garbage", { qos: 1 });
    ctl.client.publish("releases/thermo/stable", JSON.stringify({ url: "http://insecure/x.json" }), { qos: 1 });
    await realWait(() => seqsOf(watch.messages, "cc03").length === 4);
    const invalid = watch.messages.filter((m) => m.topic === "devices/cc03/events").map((m) => JSON.parse(m.payload) as AuditEvent);
    for (const e of invalid) expect(e).toMatchObject({ state: "refused", code: "ANNOUNCE_INVALID" });
    expect(invalid.map((e) => e.detail)).toEqual([
      expect.stringContaining("SIG_UNKNOWN_KEY"),
      expect.stringContaining("MANIFEST_UNSIGNED"),
      "announcement: not JSON",
      "announcement: url must be https:",
    ]);
    expect(agent.checks.length).toBe(1);
    await realWait(() => watch.messages.some((m) => m.topic === "devices/cc03/state" && JSON.parse(m.payload).last?.code === "ANNOUNCE_INVALID"));

    // every command is signed for this device (modules/commands.ts); unsigned ones are refused, counted, not acted on
    let issued = 1000;
    const signed = (cmd: "check" | "force", k = key, extra: { manifest?: string } = {}, device = "cc03") => controlMessage(k, cmd, device, ++issued, extra);
    ctl.client.publish("devices/cc03/cmd", signed("check"), { qos: 1 });
    await realWait(() => agent.checks.length === 2);
    expect(agent.checks[1]).toEqual({});
    const forced = manifest({ force: true, groups: ["lab"] });
    ctl.client.publish("devices/cc03/cmd", signed("force", key, { manifest: toBase64(forced) }), { qos: 1 });
    await realWait(() => agent.checks.length === 3);
    expect(agent.checks[2]!.force).toBe(true);
    const before = seqsOf(watch.messages, "cc03").length;
    clock.advance(8 * 10 * 60_000); // the refusals kept refill (a burst of 8, one per 10 min: modules/reporter.ts)
    const refused = [
      JSON.stringify({ cmd: "check" }), // unsigned (any broker client could send it)
      JSON.stringify({ cmd: "force", manifest: toBase64(forced) }), // unsigned: the rollout, window and cap would be skipped
      signed("force", key, { manifest: toBase64(manifest({ groups: ["lab"] })) }), // a signed command, but the release is not signed force: true
      signed("force", key, { manifest: toBase64(manifest({ force: true }, rogue)) }), // the release signed by an unknown key
      signed("check", rogue), // the command signed by an unknown key
      signed("check", key, {}, "someone-else"), // for another device
      controlMessage(key, "check", "cc03", 1000), // a replay: not newer than the last accepted
      JSON.stringify({ cmd: "reboot" }),
    ];
    for (const m of refused) ctl.client.publish("devices/cc03/cmd", m, { qos: 1 });
    await realWait(() => seqsOf(watch.messages, "cc03").length === before + refused.length);
    const details = watch.messages.filter((m) => m.topic === "devices/cc03/events").slice(before).map((m) => (JSON.parse(m.payload) as AuditEvent).detail);
    expect(details).toEqual([
      "cmd check: unsigned",
      "cmd force: unsigned",
      "cmd force: the manifest is not signed with force: true",
      expect.stringMatching(/^cmd force: SIG_UNKNOWN_KEY/),
      expect.stringMatching(/^cmd check: SIG_UNKNOWN_KEY/),
      "cmd check: ANNOUNCE_INVALID (control: addressed to someone-else)",
      expect.stringMatching(/^cmd check: ANNOUNCE_INVALID \(control: replayed/),
      "cmd: unknown command",
    ]);
    expect(agent.checks.length).toBe(3);
    watch.client.close();
    ctl.client.close();
  });

  it.skipIf(skip)("retries an announcement the agent was too busy to take", async () => {
    broker = await startBroker({ kind });
    const ctl = subscribe(broker, "ctl4", []);
    await ctl.ready;
    const clock = new VirtualClock();
    const store = new MemStore();
    const agent = new FakeAgent();
    agent.busy = 2;
    const port = new TcpMqttPort({ clock });
    const r = startReporter(devicePorts("dd04", clock, store, port), config(broker), agent, new Outbox(store, { capacity: 16 }));
    reporters.push(r);
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    await port.subscribed();
    const env = manifest({ version: "1.2.0" });
    ctl.client.publish("releases/thermo/stable", env, { qos: 1 });
    await driveUntil(clock, () => agent.checks.length === 3, { maxRealMs: 5000 });
    for (const c of agent.checks) expect(Buffer.from(c.manifest!).equals(Buffer.from(env))).toBe(true);
    ctl.client.close();
  });

  it.skipIf(skip)("fetches an announcement given as {url} over pinned HTTPS, verifies it, and reports a forged one", async () => {
    broker = await startBroker({ kind });
    const ca = await makeCa();
    const cert = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
    const clock = new VirtualClock();
    const good = manifest({ version: "1.3.0" });
    const host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, clock, routes: { "/good.json": good, "/forged.json": manifest({ version: "1.3.1" }, rogue) } });
    try {
      const ctl = subscribe(broker, "ctl6", ["devices/ee05/events"]);
      await ctl.ready;
      const store = new MemStore();
      const agent = new FakeAgent();
      const port = new TcpMqttPort({ clock });
      const ports = { ...devicePorts("ee05", clock, store, port), http: new NodeHttp({ ca: ca.caCertPem, clock }) };
      const r = startReporter(ports, config(broker), agent, new Outbox(store, { capacity: 16 }));
      reporters.push(r);
      await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
      await port.subscribed();
      ctl.client.publish("releases/thermo/stable", JSON.stringify({ url: `${host.url}/good.json` }), { qos: 1 });
      await driveUntil(clock, () => agent.checks.length === 1, { maxRealMs: 5000 });
      expect(Buffer.from(agent.checks[0]!.manifest!).equals(Buffer.from(good))).toBe(true);
      ctl.client.publish("releases/thermo/stable", JSON.stringify({ url: `${host.url}/forged.json` }), { qos: 1 });
      await driveUntil(clock, () => ctl.messages.length === 1, { maxRealMs: 5000 });
      expect(JSON.parse(ctl.messages[0]!.payload)).toMatchObject({ state: "refused", code: "ANNOUNCE_INVALID", detail: expect.stringContaining("SIG_UNKNOWN_KEY") });
      expect(agent.checks.length).toBe(1);
      ctl.client.close();
    } finally {
      await host.close();
    }
  });
});

describe("reporter against a broker that never acknowledges", () => {
  it("drain gives up after its time limit, keeping the events for the next connection", async () => {
    // A real MQTT server on loopback that accepts the session and subscriptions and answers
    // pings, but sends no PUBACK: the restart must not wait for it forever.
    const published: number[] = [];
    const server = createServer((socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const send = (p: object) => socket.write(mqttPacket.generate(p as mqttPacket.Packet));
      parser.on("packet", (p: mqttPacket.Packet) => {
        if (p.cmd === "connect") send({ cmd: "connack", returnCode: 0, sessionPresent: false });
        else if (p.cmd === "subscribe") send({ cmd: "suback", messageId: p.messageId, granted: p.subscriptions.map(() => 1) });
        else if (p.cmd === "pingreq") send({ cmd: "pingresp" });
        else if (p.cmd === "publish" && p.qos === 1) published.push(p.messageId ?? 0);
      });
      socket.on("data", (d) => parser.parse(d));
      socket.on("error", () => {});
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    const port = (server.address() as AddressInfo).port;
    const clock = new VirtualClock();
    const store = new MemStore();
    const outbox = new Outbox(store, { capacity: 64 });
    const r = startReporter(devicePorts("ee05", clock, store, new TcpMqttPort({ clock })), config({ host: "127.0.0.1", port } as Broker), new FakeAgent(), outbox, { reconnect: { baseMs: 60_000, maxMs: 60_000 } });
    try {
      await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
      for (let i = 1; i <= 3; i++) r.onEvent(event(outbox, clock, i));
      await realWait(() => published.length >= 3, 5000);
      let drained = false;
      const t0 = clock.now();
      void r.drain(3000).then(() => (drained = true));
      await driveUntil(clock, () => drained, { maxRealMs: 5000 });
      expect(clock.now() - t0).toBe(3000);
      expect(outbox.pending().map((e) => e.seq)).toEqual([1, 2, 3]);
    } finally {
      r.close();
      server.close();
    }
  });
});
