/*
 * The whole application with its MQTT side (modules/reporter.ts over FLEET's TCP binding, a
 * real aedes broker): an update reported over MQTT gives the same messages from XS as from
 * Node (version, online, every audit event with its seq, QoS 1 from the NVS outbox).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import type { Engine } from "../../host-sim/engines/engine";

let lab: Lab;
let broker: Broker;
const xs = createXsEngine();

beforeAll(async () => {
  lab = await Lab.create();
  broker = await startBroker({ kind: "aedes" });
  await xs.prepared();
});
afterAll(async () => {
  await xs.close();
  await broker?.close();
  await lab?.close();
});

type Msg = [topic: string, payload: unknown];

async function run(engine: Engine, deviceId: string): Promise<Msg[]> {
  const seen: Msg[] = [];
  let subscribed: () => void = () => {};
  const ready = new Promise<void>((resolve) => (subscribed = resolve));
  const watcher = new TcpMqttPort();
  const client = watcher.connect({ host: broker.host, port: broker.port, id: `watch-${deviceId}` }, {
    onReady: () => {
      client.subscribe(`devices/${deviceId}/#`);
      // Our own probe coming back proves the subscription is in place.
      client.publish(`devices/${deviceId}/probe`, "1", { qos: 1 });
    },
    onMessage: (topic, payload) => {
      if (topic.endsWith("/probe")) return subscribed();
      const text = Buffer.from(payload).toString("utf8");
      let value: unknown = text;
      try {
        const v = JSON.parse(text) as Record<string, unknown>;
        if (v && typeof v === "object") delete v.time; // wall-clock ms: the lab's clock runs on between runs
        value = v;
      } catch {
        // plain text (version, online)
      }
      seen.push([topic.replace(deviceId, "<id>"), value]);
    },
    onClose() {},
  });
  await ready;
  const rel = lab.publish(`mqtt-${deviceId}`, { image: { version: "1.1.0" } });
  const config = { ...lab.config(rel.manifestUrl), mqtt: { host: broker.host, port: broker.port } };
  const dev = lab.device(engine, lab.chip(FACTORY), config, { deviceId, mqtt: new TcpMqttPort({ clock: lab.clock }) });
  const committed = () => seen.some(([t, v]) => t.endsWith("/events") && (v as { state?: string }).state === "committed");
  try {
    await dev.run(() => committed(), { maxRealMs: 30_000 });
  } finally {
    await dev.stop();
    client.close();
  }
  const events = seen.filter(([t]) => t.endsWith("/events"));
  return [...seen.filter(([t]) => t.endsWith("/version")).slice(0, 2), ...events];
}

describe("MQTT reporting from XS", () => {
  it("an update reports the same version and audit events over MQTT in both engines", async () => {
    const n = await run(createNodeEngine(), "mqtt0node0001");
    const x = await run(xs, "mqtt0xs000001");
    expect(n.some(([t, v]) => t.endsWith("/version") && v === "1.0.0")).toBe(true);
    expect(n.filter(([t]) => t.endsWith("/events")).length).toBeGreaterThan(5);
    expect(x).toEqual(n);
    expect(x.map(([t, v]) => (t.endsWith("/events") ? (v as { state: string }).state : `${t}=${String(v)}`))).toContain("committed");
  });
});
