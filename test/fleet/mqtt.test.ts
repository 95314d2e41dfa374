import { describe, it, expect, afterEach } from "vitest";
import { startBroker, findMosquitto, type Broker, type BrokerKind } from "../../backend/mqtt/broker";
import { TcpMqttPort, type TcpMqttClient, type HostMqttConnectOptions } from "../../backend/mqtt/client";
import { VirtualClock } from "../../backend/clock";

const hasMosquitto = findMosquitto() !== undefined;
const kinds: BrokerKind[] = ["aedes", "mosquitto"];

interface Conn {
  client: TcpMqttClient;
  messages: { topic: string; payload: string }[];
  acks: number[];
  closed: string[];
  ready: Promise<void>;
}

function connect(port: TcpMqttPort, broker: Broker, o: Partial<HostMqttConnectOptions> & { id: string }): Conn {
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  const c: Conn = { client: undefined as unknown as TcpMqttClient, messages: [], acks: [], closed: [], ready };
  c.client = port.connect({ host: broker.host, port: broker.port, ...o }, {
    onReady: () => resolveReady(),
    onMessage: (topic, payload) => c.messages.push({ topic, payload: new TextDecoder().decode(payload) }),
    onClose: (reason) => {
      c.closed.push(reason);
      rejectReady(new Error(reason));
    },
    onPublished: (id) => c.acks.push(id),
  });
  return c;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each(kinds)("MQTT binding over real TCP (%s)", (kind) => {
  let broker: Broker | undefined;
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("publishes QoS 1 with PUBACK, retains, subscribes, fires the will on an abrupt drop (install: apt-get install -y mosquitto)", async () => {
    broker = await startBroker({ kind });
    const clock = new VirtualClock();
    const devPort = new TcpMqttPort({ clock });
    const ctlPort = new TcpMqttPort();
    const dev = connect(devPort, broker, { id: "dev1", will: { topic: "devices/dev1/online", payload: "0", retain: true, qos: 1 } });
    await dev.ready;
    dev.client.publish("devices/dev1/online", "1", { qos: 1, retain: true });
    dev.client.publish("devices/dev1/version", "1.0.0", { retain: true });
    const id = dev.client.publish("devices/dev1/events", JSON.stringify({ seq: 1 }), { qos: 1 });
    expect(id).toBeGreaterThan(0);
    expect(clock.quiet(1_000_000)).toBe(false); // held until PUBACK
    await until(() => dev.acks.length === 2);
    expect(clock.quiet(1_000_000)).toBe(true);

    const ctl = connect(ctlPort, broker, { id: "ctl", subscribeQos: 1 });
    await ctl.ready;
    ctl.client.subscribe("devices/+/version");
    ctl.client.subscribe("devices/+/online");
    await until(() => ctl.messages.length === 2);
    expect(ctl.messages).toContainEqual({ topic: "devices/dev1/version", payload: "1.0.0" });
    expect(ctl.messages).toContainEqual({ topic: "devices/dev1/online", payload: "1" });

    dev.client.subscribe("devices/dev1/cmd");
    await devPort.subscribed();
    ctl.client.publish("devices/dev1/cmd", JSON.stringify({ cmd: "check" }), { qos: 1 });
    await until(() => dev.messages.length === 1);
    expect(JSON.parse(dev.messages[0]!.payload)).toEqual({ cmd: "check" });

    devPort.powerOff();
    await until(() => ctl.messages.some((m) => m.topic === "devices/dev1/online" && m.payload === "0"));
    expect(dev.closed).toEqual([]); // a power cut calls nobody back
    ctl.client.close();
    ctl.client.close();
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("delivers the retained message of an exact topic on subscribe: the last one kept, none once cleared, wildcards alike", async () => {
    broker = await startBroker({ kind });
    const port = new TcpMqttPort();
    const pub = connect(port, broker, { id: "pub" });
    await pub.ready;
    pub.client.publish("releases/thermo/stable", "v1", { qos: 1, retain: true });
    pub.client.publish("releases/thermo/stable", "v2", { qos: 1, retain: true }); // replaces v1
    pub.client.publish("releases/thermo/beta", "b1", { qos: 1, retain: true });
    pub.client.publish("releases/thermo/beta", "", { qos: 1, retain: true }); // clears it
    pub.client.publish("releases/other/stable", "o1", { qos: 1, retain: true });
    await until(() => pub.acks.length === 5);
    const sub = connect(port, broker, { id: "sub", subscribeQos: 1 });
    await sub.ready;
    sub.client.subscribe("releases/thermo/stable");
    sub.client.subscribe("releases/thermo/beta");
    sub.client.subscribe("releases/thermo/nothing");
    await until(() => sub.messages.length >= 1);
    await new Promise((r) => setTimeout(r, 100)); // nothing more arrives
    expect(sub.messages).toEqual([{ topic: "releases/thermo/stable", payload: "v2" }]);
    const wild = connect(port, broker, { id: "wild", subscribeQos: 1 });
    await wild.ready;
    wild.client.subscribe("releases/+/stable");
    await until(() => wild.messages.length >= 2);
    expect(wild.messages.map((m) => m.payload).sort()).toEqual(["o1", "v2"]);
    // After a broker restart (sessions and retained kept, as with persistence).
    await broker.stop();
    await broker.start();
    const again = connect(port, broker, { id: "again", subscribeQos: 1 });
    await again.ready;
    again.client.subscribe("releases/thermo/stable");
    await until(() => again.messages.length >= 1);
    expect(again.messages).toEqual([{ topic: "releases/thermo/stable", payload: "v2" }]);
    for (const c of [pub, sub, wild, again]) c.client.close();
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("reports a refused connection and a broker stop as onClose with a code; clean close sends no will", async () => {
    broker = await startBroker({ kind });
    const port = new TcpMqttPort();
    const ctl = connect(port, broker, { id: "ctl2", subscribeQos: 1 });
    await ctl.ready;
    ctl.client.subscribe("devices/+/online");
    await port.subscribed();
    const dev = connect(port, broker, { id: "dev2", will: { topic: "devices/dev2/online", payload: "0", retain: true } });
    await dev.ready;
    dev.client.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(ctl.messages.filter((m) => m.payload === "0")).toEqual([]);

    await broker.stop();
    await until(() => ctl.closed.length === 1);
    expect(ctl.closed[0]).toMatch(/^MQTT_CLOSED/);
    const refused = connect(port, broker, { id: "dev3" });
    await expect(refused.ready).rejects.toThrow(/^MQTT_CONNECT/);
    await broker.start();
    const again = connect(port, broker, { id: "dev3" });
    await again.ready;
    again.client.close();
    expect(() => again.client.publish("x", "y")).toThrow();
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("keeps a persistent session's queued QoS 1 messages across a broker restart", async () => {
    broker = await startBroker({ kind });
    const port = new TcpMqttPort();
    let ctl = connect(port, broker, { id: "ctl3", clean: false, subscribeQos: 1 });
    await ctl.ready;
    ctl.client.subscribe("devices/+/events");
    await port.subscribed();
    ctl.client.drop(false);
    await broker.stop();
    await broker.start();
    const dev = connect(port, broker, { id: "dev4" });
    await dev.ready;
    for (let i = 1; i <= 5; i++) dev.client.publish("devices/dev4/events", String(i), { qos: 1 });
    await until(() => dev.acks.length === 5);
    ctl = connect(port, broker, { id: "ctl3", clean: false, subscribeQos: 1 });
    await ctl.ready;
    await until(() => ctl.messages.length === 5);
    expect(ctl.messages.map((m) => m.payload)).toEqual(["1", "2", "3", "4", "5"]);
    dev.client.close();
    ctl.client.close();
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("a handler that throws (a power cut inside the firmware) tears the link down without onClose", async () => {
    broker = await startBroker({ kind });
    const port = new TcpMqttPort();
    const ctlPort = new TcpMqttPort();
    const ctl = connect(ctlPort, broker, { id: "ctl5", subscribeQos: 1 });
    await ctl.ready;
    ctl.client.subscribe("devices/dev5/online");
    await ctlPort.subscribed();
    const closed: string[] = [];
    let ready!: () => void;
    const up = new Promise<void>((r) => (ready = r));
    const dev = port.connect({ host: broker.host, port: broker.port, id: "dev5", will: { topic: "devices/dev5/online", payload: "0", retain: true } }, {
      onReady: () => ready(),
      onMessage: () => {
        throw new Error("FLASH_POWER_CUT");
      },
      onClose: (r) => void closed.push(r),
    });
    await up;
    dev.subscribe("devices/dev5/cmd");
    await port.subscribed();
    ctl.client.publish("devices/dev5/cmd", "{}", { qos: 1 });
    await until(() => port.handlerErrors.length === 1);
    expect((port.handlerErrors[0] as Error).message).toBe("FLASH_POWER_CUT");
    expect(closed).toEqual([]);
    expect(port.openClients).toBe(0);
    await until(() => ctl.messages.some((m) => m.payload === "0")); // no DISCONNECT: the will fired
    ctl.client.close();
  });
});
