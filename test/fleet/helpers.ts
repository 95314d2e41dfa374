/* Shared pieces for fleet tests: an in-memory NVS-like store, a subscriber, ports for one device. */
import { expect } from "vitest";
import type { Ports, StorePort, StoreValue, SystemPort } from "../../modules/ports";
import { TcpMqttPort, type TcpMqttClient } from "../../backend/mqtt/client";
import type { Broker } from "../../backend/mqtt/broker";
import type { VirtualClock } from "../../backend/clock";
import { nodeCrypto } from "../../backend/crypto";
import { memoCrypto } from "../../host-sim/lab/fleet-faults";

/** One verdict cache for every simulated device of a test process (they verify the same envelopes). */
export const fleetCrypto = memoCrypto(nodeCrypto);

/** Map-backed StorePort with Moddable's limits (the fleet tests cut power at the network, not in flash). */
export class MemStore implements StorePort {
  data = new Map<string, StoreValue>();
  get(d: string, k: string) {
    return this.data.get(`${d}/${k}`);
  }
  set(d: string, k: string, v: StoreValue) {
    if (d.length > 15 || k.length > 15) throw new Error("STORE_KEY");
    if (typeof v === "string" && v.length > 4000) throw new Error("STORE_VALUE");
    this.data.set(`${d}/${k}`, v);
  }
  delete(d: string, k: string) {
    this.data.delete(`${d}/${k}`);
  }
  keys(d: string) {
    return [...this.data.keys()].filter((k) => k.startsWith(`${d}/`)).map((k) => k.slice(d.length + 1));
  }
}

export function simSystem(id: string, hardware = "esp32-rev3", logs: string[] = []): SystemPort {
  return {
    restart() {},
    resetReason: () => "power-on",
    deviceId: () => id,
    hardwareRevision: () => hardware,
    chipId: () => 0,
    freeHeap: () => 100_000,
    log: (line) => void logs.push(line),
  };
}

export function devicePorts(id: string, clock: VirtualClock, store: StorePort, mqtt: TcpMqttPort): Ports {
  return {
    flash: undefined as never,
    http: { request: () => { throw new Error("no http in this test"); } },
    store,
    crypto: fleetCrypto,
    clock,
    system: simSystem(id),
    mqtt,
  };
}

export interface Subscriber {
  client: TcpMqttClient;
  messages: { topic: string; payload: string }[];
  ready: Promise<void>;
}

export function subscribe(broker: Broker, id: string, filters: string[], clean = true): Subscriber {
  const port = new TcpMqttPort();
  let ok!: () => void;
  let ko!: (e: Error) => void;
  const ready = new Promise<void>((a, b) => ((ok = a), (ko = b)));
  const s: Subscriber = { client: undefined as never, messages: [], ready };
  s.client = port.connect({ host: broker.host, port: broker.port, id, clean, subscribeQos: 1 }, {
    onReady() {
      for (const f of filters) s.client.subscribe(f);
      void port.subscribed().then(ok);
    },
    onMessage: (topic, p) => void s.messages.push({ topic, payload: Buffer.from(p).toString("utf8") }),
    onClose: (r) => ko(new Error(r)),
  });
  return s;
}

export async function realWait(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A subscriber that comes after the device is given the version the broker retained for it. */
export async function expectRetainedVersion(broker: Broker, id: string, version: string): Promise<void> {
  const late = subscribe(broker, `late-${id}`, [`devices/${id}/version`]);
  try {
    await late.ready;
    await realWait(() => late.messages.length > 0);
    expect(late.messages[0]!.payload).toBe(version);
  } finally {
    late.client.close();
  }
}
