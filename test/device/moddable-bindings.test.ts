/*
 * src/mqtt.ts, src/store.ts and src/system.ts under Node over models of the Moddable runtime
 * (test/device/moddable-runtime.ts). The MQTT client is Moddable's own modules/network/mqtt/mqtt.js
 * from the SDK source, on a model socket, talking real MQTT bytes (mqtt-packet) with the test.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import * as mqttPacket from "mqtt-packet";
import { installXsGlobals, moddableFile } from "./moddable-runtime";
import { SimChip } from "../../host-sim/chip/chip";
import { brokerOptions, parseConfig } from "../../modules/config";

vi.mock("mqtt", async () => {
  const { moddableFile: find, installXsGlobals: install } = await import("./moddable-runtime");
  install();
  const path = find("modules/network/mqtt/mqtt.js");
  if (!path) return { default: class {} };
  return await import(/* @vite-ignore */ path);
});
vi.mock("socket", async () => ({ Socket: (await import("./moddable-runtime")).Socket }));
vi.mock("websocket", () => ({ Client: class {} }));
vi.mock("timer", async () => ({ default: (await import("./moddable-runtime")).Timer }));
vi.mock("time", async () => ({ default: (await import("./moddable-runtime")).Time }));
vi.mock("securesocket", async () => ({ default: (await import("./moddable-runtime")).SecureSocket }));
vi.mock("preference", async () => ({ default: (await import("./moddable-runtime")).Preference }));
// src/tls-chain.ts's chain check (used only for TLS sessions, which these tests do not open)
vi.mock("x509", () => ({ default: { decode: () => ({}), decodeSPKI: () => ({}), decodeExtension: () => undefined } }));
vi.mock("resetReason", () => ({ default: () => ({ reason: 3, string: "ESP_RST_SW" }) }));
vi.mock("../../src/native/esp32", () => ({
  baseMac: () => "240ac4123456",
  chipId: () => 0,
  chipRevision: () => 301,
  freeHeap: () => 100_000,
  restart: () => undefined,
}));

// Through a computed path: the Node-side tsc (tsconfig.json) must not follow these into src/,
// which compiles against the Moddable declarations (tsconfig.device.json, mcconfig) only.
import type { MqttPort, StorePort, SystemPort } from "../../modules/ports";
const load = (name: string) => import(/* @vite-ignore */ `../../src/${name}`);
const { EspMqtt } = (await load("mqtt")) as { EspMqtt: new (o?: { ca?: ArrayBuffer }) => MqttPort };
const { PreferenceStore } = (await load("store")) as { PreferenceStore: new () => StorePort };
const { EspSystem } = (await load("system")) as { EspSystem: new () => SystemPort };
type SharedClientLike = { onReady?: () => void; onMessage?: (t: string, p: ArrayBuffer) => void; onClose?: () => void; publish(t: string, d: string): void; close(): void };
const { SharedClient, SharedMqtt } = (await load("shared-mqtt")) as {
  SharedClient: new (o: { host: string; port: number; id: string }) => SharedClientLike;
  SharedMqtt: new (c: SharedClientLike) => MqttPort;
};
const { Socket, SecureSocket } = await import("./moddable-runtime");

const MQTT_JS = moddableFile("modules/network/mqtt/mqtt.js");
beforeAll(() => installXsGlobals());

type Closed = { reason?: string };
function handler(closed: Closed, extra: { onReady?: () => void; onPublished?: (id: number) => void } = {}) {
  return { onReady: extra.onReady ?? (() => {}), onMessage: () => {}, onClose: (r: string) => void (closed.reason = r), ...(extra.onPublished ? { onPublished: extra.onPublished } : {}) };
}
const tick = () => new Promise<void>((r) => setTimeout(r, 5));

/** Every packet the client wrote on the model socket, parsed by mqtt-packet. */
function sent(socket: InstanceType<typeof Socket>): mqttPacket.Packet[] {
  const out: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (p) => out.push(p));
  for (const w of socket.written) parser.parse(Buffer.from(w));
  return out;
}

describe.skipIf(!MQTT_JS)("EspMqtt on Moddable's mqtt.js (src/mqtt.ts)", () => {
  it("reports a client that cannot be constructed as an asynchronous MQTT_CONNECT close, and does not throw", async () => {
    const closed: Closed = {};
    const c = new EspMqtt({ ca: new ArrayBuffer(8) }).connect({ host: "", port: 1883, id: "d", keepalive: 0 }, handler(closed));
    expect(closed.reason).toBeUndefined(); // not from inside connect(): the caller is still setting up
    await tick();
    expect(closed.reason).toBe("MQTT_CONNECT: Error: parameter host is required");
    expect(() => c.publish("t", "x")).toThrow(/MQTT_CLOSED/);
    c.close();
    c.close();

    SecureSocket.failWith = "date validation failed";
    const tls: Closed = {};
    new EspMqtt({ ca: new ArrayBuffer(8) }).connect({ host: "broker", port: 8883, id: "d", keepalive: 0, secure: true }, handler(tls));
    await tick();
    expect(tls.reason).toBe("MQTT_CONNECT: Error: date validation failed");

    const closedFirst: Closed = {};
    new EspMqtt({ ca: new ArrayBuffer(8) }).connect({ host: "", port: 1883, id: "d", keepalive: 0 }, handler(closedFirst)).close();
    await tick();
    expect(closedFirst.reason).toBeUndefined(); // close() before the report: no onClose, as for a live client
  });

  it("puts the configured user name, password and client id in CONNECT (brokerOptions -> src/mqtt.ts -> mqtt.js user/password)", async () => {
    Socket.made.length = 0;
    const mqtt = parseConfig({ product: "p", manifestUrl: "https://h/m.json", trustedKeys: [{ type: "ecdsa-p256", spki: "AAAA" }], mqtt: { host: "broker", port: 1883, username: "dev-0042", password: "s3cret ✓", clientId: "thermo-0042-c" } }).mqtt!;
    const client = new EspMqtt().connect(brokerOptions(mqtt, "240ac4123456"), handler({}));
    const socket = Socket.made[0]!;
    socket.connect();
    const connect = sent(socket)[0] as mqttPacket.IConnectPacket;
    expect([connect.cmd, connect.clientId, connect.username, Buffer.from(connect.password ?? []).toString("utf8")]).toEqual(["connect", "thermo-0042-c", "dev-0042", "s3cret ✓"]);
    client.close();
  });

  it("never hands out packet id 0: after 65,535 QoS 1 publishes the next id is 1, on the wire and to the outbox", async () => {
    Socket.made.length = 0;
    let ready = false;
    const acked: number[] = [];
    const client = new EspMqtt().connect({ host: "broker", port: 1883, id: "dev", keepalive: 0 }, handler({}, { onReady: () => (ready = true), onPublished: (id) => acked.push(id) }));
    const socket = Socket.made[0]!;
    socket.connect();
    expect(sent(socket)[0]).toMatchObject({ cmd: "connect", clientId: "dev" });
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false })));
    await tick();
    expect(ready).toBe(true);
    const ids: number[] = [];
    for (let i = 0; i < 65_537; i++) {
      ids.push(client.publish("devices/dev/events", "e", { qos: 1 }));
      if (socket.written.length > 64) socket.written.splice(1, socket.written.length - 1); // keep CONNECT only
    }
    expect(ids.slice(0, 3)).toEqual([2, 3, 4]); // mqtt.js starts at 1 and increments first
    expect(ids.slice(65_532, 65_537)).toEqual([65_534, 65_535, 1, 2, 3]);
    expect(ids).not.toContain(0);
    socket.written.length = 1;
    const id = client.publish("devices/dev/events", "last", { qos: 1 });
    const wire = sent(socket).filter((p) => p.cmd === "publish");
    expect(wire).toMatchObject([{ qos: 1, messageId: id }]);
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "puback", messageId: id })));
    expect(acked).toEqual([id]);
    client.close();
  });
});

describe.skipIf(!MQTT_JS)("the app's own connection shared with the agent (src/shared-mqtt.ts on Moddable's mqtt.js)", () => {
  it("one socket: both sides get ready and messages, the agent's QoS 1 publishes are acknowledged to it, its close leaves the app's connection open", async () => {
    Socket.made.length = 0;
    const app = { ready: 0, messages: [] as string[], closed: 0 };
    const client = new SharedClient({ host: "broker", port: 1883, id: "app-1" });
    client.onReady = () => void app.ready++; // set before and after the hand-over alike
    const agent = { ready: 0, messages: [] as string[], acked: [] as number[], closed: "" };
    const port = new SharedMqtt(client);
    const conn = port.connect({ host: "ignored", port: 1, id: "agent", keepalive: 0 }, {
      onReady: () => void agent.ready++, onMessage: (t) => void agent.messages.push(t), onClose: (r) => void (agent.closed = r), onPublished: (id) => void agent.acked.push(id),
    });
    client.onMessage = (t) => void app.messages.push(t);
    client.onClose = () => void app.closed++;
    expect(Socket.made).toHaveLength(1);
    const socket = Socket.made[0]!;
    socket.connect();
    expect(sent(socket)[0]).toMatchObject({ cmd: "connect", clientId: "app-1" }); // the app's id, not the agent's
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false })));
    await tick();
    expect([app.ready, agent.ready]).toEqual([1, 1]);
    const id = conn.publish("devices/d/events", "{}", { qos: 1 });
    expect(sent(socket).filter((p) => p.cmd === "publish")).toMatchObject([{ qos: 1, messageId: id, topic: "devices/d/events" }]);
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "puback", messageId: id })));
    expect(agent.acked).toEqual([id]);
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "publish", topic: "devices/d/cmd", payload: Buffer.from("{}"), qos: 0, dup: false, retain: false })));
    await tick();
    expect([app.messages, agent.messages]).toEqual([["devices/d/cmd"], ["devices/d/cmd"]]);
    // a second attach (the self-test's broker check) on a ready connection is told at once, after connect() returned
    let checkReady = false;
    const check = port.connect({ host: "x", port: 1, id: "diag", keepalive: 0 }, { onReady: () => void (checkReady = true), onMessage: () => {}, onClose: () => {} });
    expect(checkReady).toBe(false);
    await tick();
    expect(checkReady).toBe(true);
    check.close();
    conn.close();
    expect(socket.closed).toBe(false); // the app's connection
    expect(() => conn.publish("t", "x")).toThrow(/MQTT_CLOSED/);
    client.publish("app/topic", "mine");
    expect(sent(socket).some((p) => p.cmd === "publish" && p.topic === "app/topic")).toBe(true);
    expect(agent.closed).toBe("");
  });

  it("tells the agent when the app's connection closes, and refuses a client that is not a SharedClient", async () => {
    Socket.made.length = 0;
    const client = new SharedClient({ host: "broker", port: 1883, id: "app-2" });
    let appClosed = 0;
    client.onClose = () => void appClosed++;
    let reason = "";
    new SharedMqtt(client).connect({ host: "x", port: 1, id: "a", keepalive: 0 }, { onReady: () => {}, onMessage: () => {}, onClose: (r) => void (reason = r) });
    const socket = Socket.made[0]!;
    socket.connect();
    socket.deliver(new Uint8Array(mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false })));
    await tick();
    client.close(); // mqtt.js close() calls no onClose; a lost connection does (fail)
    (client as unknown as { fail(m: string): void }).fail("lost");
    expect([appClosed, reason]).toEqual([1, "MQTT_CLOSED: the app's connection closed"]);
    expect(() => new SharedMqtt({} as SharedClientLike)).toThrow(TypeError);
  });
});

describe("PreferenceStore on modPreference.c's limits (src/store.ts)", () => {
  const store = new PreferenceStore();
  it("takes 3,999 bytes of text and refuses 4,000 as STORE_VALUE, not STORE_FULL (NVS counts the NUL)", () => {
    store.set("xsota", "s", "a".repeat(3999));
    expect(store.get("xsota", "s")).toHaveLength(3999);
    expect(() => store.set("xsota", "s", "a".repeat(4000))).toThrow(/^STORE_VALUE/);
    expect(() => store.set("xsota", "s", "é".repeat(2000))).toThrow(/^STORE_VALUE/); // 4,000 UTF-8 bytes
    store.set("xsota", "b", new ArrayBuffer(4000));
    expect(() => store.set("xsota", "b", new ArrayBuffer(4001))).toThrow(/^STORE_VALUE/);
    expect(() => store.set("xsota", "f", 1.5)).toThrow(/^STORE_VALUE/);
  });

  it("is the limit the simulator's NVS enforces too", () => {
    const sim = SimChip.create().store();
    sim.set("xsota", "s", "a".repeat(3999));
    expect(() => sim.set("xsota", "s", "a".repeat(4000))).toThrow(/^STORE_VALUE/);
    sim.set("xsota", "b", new ArrayBuffer(4000));
  });
});

describe("EspSystem (src/system.ts)", () => {
  it("has a device id without any network interface (the eFuse base MAC), and names the reset reason", () => {
    const system = new EspSystem();
    expect(system.deviceId()).toBe("240ac4123456");
    expect(system.resetReason()).toBe("software");
    expect(system.hardwareRevision()).toBe("esp32-rev3.1");
  });
});
