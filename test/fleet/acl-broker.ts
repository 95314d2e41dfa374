/*
 * A mosquitto as deploy/mosquitto ships it (the shipped ACL, a password file made here), and MQTT
 * peers with credentials, for test/fleet/broker-acl.test.ts and test/fleet/ingest.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findMosquitto, mosquittoPasswordLine, startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort, type TcpMqttClient } from "../../backend/mqtt/client";

export const hasMosquitto = findMosquitto() !== undefined;
export const SHIPPED_ACL = resolve(__dirname, "../../deploy/mosquitto/acl");

/** A broker as deploy/mosquitto ships it, with `users` (name -> password) in a fresh password file. */
export async function aclBroker(users: Record<string, string>): Promise<{ broker: Broker; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "xsota-acl-"));
  const passwordFile = join(dir, "passwd");
  writeFileSync(passwordFile, Object.entries(users).map(([u, p]) => mosquittoPasswordLine(u, p)).join("\n") + "\n", { mode: 0o600 });
  const broker = await startBroker({ kind: "mosquitto", mosquittoAuth: { passwordFile, aclFile: SHIPPED_ACL } });
  return { broker, dir };
}

export interface Peer {
  client: TcpMqttClient;
  port: TcpMqttPort;
  messages: { topic: string; payload: string }[];
  ready: Promise<void>;
  closed: string | undefined;
}

export function peer(broker: Broker, id: string, user?: string, password?: string, filters: string[] = []): Peer {
  const port = new TcpMqttPort();
  let ok!: () => void, ko!: (e: Error) => void;
  const p: Peer = { client: undefined as never, port, messages: [], ready: new Promise((a, b) => ((ok = a), (ko = b))), closed: undefined };
  p.ready.catch(() => {});
  p.client = port.connect({ host: broker.host, port: broker.port, id, subscribeQos: 1, ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}) }, {
    onReady() {
      for (const f of filters) p.client.subscribe(f);
      void port.subscribed().then(ok);
    },
    onMessage: (topic, payload) => void p.messages.push({ topic, payload: Buffer.from(payload).toString("utf8") }),
    onClose: (r) => {
      p.closed = r;
      ko(new Error(r));
    },
  });
  return p;
}

