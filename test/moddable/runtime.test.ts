/*
 * The agent on Moddable's own runtime (moddable-host/ built with mcconfig for x-cli-lin): Moddable's
 * XS, http over securesocket (TLS 1.2, the pinned CA), crypt, preference, timer, mqtt, through the
 * devkit's src/ bindings. Each scenario of host-sim/lab/scenarios.ts runs there (one process per
 * boot over a flash file), in the Node engine and in xsnap's XS, in the same Lab, with the same configuration;
 * the outcomes must be equal (host-sim/engines/moddable/scenarios.ts comparable(): flash operation counts
 * and NVS internals differ by design). Skipped, with the reason, when no Moddable tree is there.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab } from "../../host-sim/lab/lab";
import { scenarios, runScenario, checkOutcome, type Scenario } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import { generateKey } from "../../backend/release/keys";
import { runModdableScenario, comparable, FAST } from "../../host-sim/engines/moddable/scenarios";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { FACTORY } from "../../host-sim/lab/lab";


const byName = (name: string): Scenario => {
  const s = scenarios.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name}`);
  return s;
};

describe.skipIf(skip !== undefined)("the agent on Moddable's runtime (x-cli-lin)", { timeout: 180_000 }, () => {
  let lab: Lab;
  let program: string;
  const xs = createXsEngine();
  beforeAll(async () => {
    program = await built(); // a failed build fails every test here
    lab = await Lab.create();
    await xs.prepared();
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await xs.close();
    await lab?.close();
  });

  /** One scenario on Moddable, in Node and in xsnap's XS, same Lab and configuration: as expected, and equal. */
  async function same(s: Scenario, inLab = () => lab) {
    const m = await runModdableScenario(s, inLab(), { program });
    const fast = { ...s, config: { ...FAST, ...s.config } };
    const n = await runScenario(fast, createNodeEngine(), inLab());
    const x = await runScenario(fast, xs, inLab());
    expect(checkOutcome(s, m), m.device.logs.slice(-12).join("\n")).toEqual([]);
    expect(comparable(m)).toEqual(comparable(n));
    expect(comparable(x)).toEqual(comparable(n));
    return m;
  }

  it("happy 1.0.0 -> 1.1.0: ECDSA manifest verified by Moddable's crypt, committed", async () => {
    const m = await same(byName("happy"));
    expect(m.running).toEqual({ version: "1.1.0", slot: 1 });
    expect(m.otadata.map((e) => e.state)).toContain("VALID");
    expect(m.device.logs.some((l) => l.startsWith("stderr:"))).toBe(false);
  });

  it("tampered image -> DOWNLOAD_HASH, app0 untouched", async () => {
    await same(byName("tampered-image"));
  });

  it("host certificate from another CA -> HTTP_TLS", async () => {
    await same(byName("wrong-certificate"));
  });

  it("connection cut mid-image, resumed with Range and If-Range", async () => {
    const s = byName("cuts");
    const before = lab.host.stats.log.length;
    const m = await runModdableScenario(s, lab, { program });
    const gets = lab.host.stats.log.slice(before).filter((r) => r.path.endsWith(".bin"));
    const n = await runScenario({ ...s, config: { ...FAST, ...s.config } }, createNodeEngine(), lab);
    expect(checkOutcome(s, m)).toEqual([]);
    expect(comparable(m)).toEqual(comparable(n));
    expect(gets.length).toBeGreaterThan(1);
    expect(gets[0]!.range).toBeUndefined();
    const resumed = gets.filter((r) => r.status === 206);
    expect(resumed.length).toBeGreaterThan(0);
    for (const r of resumed) {
      expect(r.range).toMatch(/^bytes=[1-9]\d*-$/);
      expect(r.ifRange).toMatch(/^"/); // the strong ETag of the first response
    }
  });

  it("self-test failure -> rolled back to 1.0.0", async () => {
    const m = await same(byName("rollback-fail-diagnostics"));
    expect(m.bootVersions).toEqual(["1.0.0", "1.1.0", "1.0.0"]);
  });

  // Moddable SDK 8.2.3's certificate check (ssl_cert.js), found here; release/pki.ts moddableTlsDefect, docs/simulator.md "TLS on Moddable".
  async function onOddLab(options: Parameters<typeof Lab.create>[0]) {
    const odd = await Lab.create(options);
    try {
      const m = await runModdableScenario(byName("happy"), odd, { program });
      const n = await runScenario({ ...byName("happy"), config: { ...FAST } }, createNodeEngine(), odd);
      return { moddable: [m.final, m.code, m.running?.version], node: [n.final, n.code, n.running?.version] };
    } finally {
      await odd.close();
    }
  }

  it("a CA whose ECDSA self-signature has a short r: every Moddable device refuses the host (SDK defect), Node's TLS accepts it", async () => {
    const r = await onOddLab({ moddableDefect: "ca" });
    expect(r.moddable).toEqual(["failed", "HTTP_TLS", "1.0.0"]);
    expect(r.node).toEqual(["committed", null, "1.1.0"]);
  });

  it("a leaf whose signature has a short r: refused as well (src/http.ts holds each certificate to its signature, with the SDK's check)", async () => {
    const r = await onOddLab({ moddableDefect: "leaf" });
    expect(r.moddable).toEqual(["failed", "HTTP_TLS", "1.0.0"]);
    expect(r.node).toEqual(["committed", null, "1.1.0"]);
  });

  // SDK 8.2.3's verify() falls back to checking the chain's last certificate against the pinned
  // one when the leaf's signature fails: without src/http.ts's own chain check, a man in the
  // middle's leaf sent with the pinned CA's (public) certificate was accepted and the update
  // committed from that host. Now refused, as Node's TLS refuses it.
  it("a leaf the pinned CA never signed, followed by the pinned CA's certificate, is refused as on Node", async () => {
    const r = await onOddLab({ forgedLeaf: true });
    expect(r.node).toEqual(["failed", "HTTP_TLS", "1.0.0"]);
    expect(r.moddable).toEqual(r.node);
  });

  it("a chain with an intermediate CA (leaf + intermediate, the root pinned) passes the chain check, as on Node", async () => {
    const r = await onOddLab({ intermediate: true });
    expect(r.moddable).toEqual(["committed", null, "1.1.0"]);
    expect(r.node).toEqual(r.moddable);
  });

  // basicConstraints: a leaf the pinned CA signed (cA FALSE) has signed the host's certificate.
  // Every signature in the chain verifies; only the issuer's being a CA is wrong. Node's OpenSSL
  // refuses it; src/http.ts's chain check now does too (any leaf of the CA could otherwise
  // impersonate the update host or the broker).
  it("a leaf issued by another leaf of the pinned CA (not a CA) is refused as on Node", async () => {
    const r = await onOddLab({ leafIssued: true });
    expect(r.node).toEqual(["failed", "HTTP_TLS", "1.0.0"]);
    expect(r.moddable).toEqual(r.node);
  });

  it("an RSA-2048 signed manifest verifies (PKCS#1 v1.5 over Moddable's RSA)", async () => {
    const rsa = await Lab.create({ key: generateKey("rsa-2048") });
    try {
      await same(byName("happy"), () => rsa);
    } finally {
      await rsa.close();
    }
  });

  it("the fleet's MQTT report (version, every audit event over QoS 1) reaches the embedded broker, as from Node", async () => {
    const broker: Broker = await startBroker({ kind: "aedes" });
    try {
      const watch = async (deviceId: string) => {
        const seen: [string, unknown][] = [];
        let ready: () => void = () => {};
        const subscribed = new Promise<void>((r) => (ready = r));
        const client = new TcpMqttPort().connect({ host: broker.host, port: broker.port, id: `watch-${deviceId}` }, {
          onReady: () => {
            client.subscribe(`devices/${deviceId}/#`);
            client.publish(`devices/${deviceId}/probe`, "1", { qos: 1 });
          },
          onMessage: (topic, payload) => {
            if (topic.endsWith("/probe")) return ready();
            const text = Buffer.from(payload).toString("utf8");
            let v: unknown = text;
            try {
              v = JSON.parse(text);
            } catch {
              // plain text
            }
            seen.push([topic.replace(deviceId, "<id>"), v]);
          },
          onClose() {},
        });
        await subscribed;
        return { seen, close: () => client.close() };
      };
      const summary = (seen: [string, unknown][]) => seen.map(([t, v]) =>
        t.endsWith("/events") ? `event ${(v as { state: string }).state}` : t.endsWith("/version") ? `version ${String(v)}` : t).filter((x) => !x.includes("/"));
      const mqtt = { host: broker.host, port: broker.port };
      // Moddable: the device id is the lab's (240ac4000001).
      const w = await watch("240ac4000001");
      const m = await runModdableScenario(byName("happy"), lab, { program, mqtt });
      await new Promise((r) => setTimeout(r, 300));
      w.close();
      expect(m.final).toBe("committed");
      // Node, same release and configuration, another device id.
      const w2 = await watch("240ac4000002");
      const rel = lab.publish(`mqtt-node/${lab.nextRun()}`, { image: { version: "1.1.0", secureVersion: 1 } });
      const dev = lab.device(createNodeEngine(), lab.chip(FACTORY), { ...lab.config(rel.manifestUrl, FAST), mqtt }, { deviceId: "240ac4000002", mqtt: new TcpMqttPort({ clock: lab.clock }) });
      try {
        await dev.run((d) => d.idle, { maxRealMs: 30_000 });
      } finally {
        await dev.stop();
      }
      await new Promise((r) => setTimeout(r, 300));
      w2.close();
      const got = summary(w.seen);
      expect(got).toContain("version 1.0.0");
      expect(got).toContain("version 1.1.0");
      expect(got).toContain("event committed");
      expect(got.filter((x) => x.startsWith("event"))).toEqual(summary(w2.seen).filter((x) => x.startsWith("event")));
    } finally {
      await broker.close();
    }
  });
});
