/*
 * The shipped mosquitto ACL (deploy/mosquitto/acl) on a real mosquitto with a password file made
 * here: a device may publish only under its own devices/<id>/ and read only its own cmd and the
 * release announcements; the controller reads every device; a client without a user name, or
 * with a wrong password, is refused. Each refusal is checked against a positive control sent
 * after it on the same connection (MQTT keeps one client's messages in order), so no sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import type { Broker } from "../../host-sim/mqtt/broker";
import { realWait } from "./helpers";
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
