/*
 * Roles mode on Moddable's runtime (the x-cli-lin program: modules/ over src/'s bindings, one
 * process per boot): test/release/roles.test.ts's "a device in roles mode, end to end" and "CA
 * rollover through root metadata", which run there on the node and xs engines, with the same keys,
 * documents and expectations, in real time (the program's clock: roots and rollouts are signed now).
 * The CA rollover runs with the new CA listed first and, as a CA rollover's overlap may list them,
 * second: SDK 8.2.3's securesocket takes one certificate, and before src/tls-chain.ts held the chain
 * to every anchor the device took only the first one listed (the CA2 host failed with [ca1, ca2],
 * the CA1 host with [ca2, ca1]). And test/release/broker-ca-rollover.test.ts's broker CA rollover:
 * the root's anchors are the secure MQTT connection's `ca` too (modules/roles.ts anchoredMqtt,
 * src/mqtt.ts), against a real mosquitto whose TLS listener has a CA2 certificate. And the walk of
 * the roots a bundle's chain skips (root.<n>.json beside the manifest).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { nodeCrypto } from "../../backend/crypto";
import { generateKey, type SigningKey } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { createRollout, signRoot, type RootInput } from "../../backend/release/roles-tool";
import { makeServerCert } from "../../backend/release/pki";
import { startUpdateHost } from "../../backend/update-host";
import { RootStore } from "../../modules/roles";
import { toBase64 } from "../../modules/bytes";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { outcomeOf, type Outcome } from "../../host-sim/lab/scenarios";
import { ModdableDevice } from "../../host-sim/engines/moddable/driver";
import { FAST } from "../../host-sim/engines/moddable/scenarios";
import { findMosquitto, startBroker } from "../../backend/mqtt/broker";
import { realWait, subscribe } from "../fleet/helpers";

const k = (): SigningKey => generateKey("ecdsa-p256");
const [root1, root2, root3] = [k(), k(), k()];
const [rel1, roll1, cmd1] = [k(), k(), k()];
const NOW = Date.now(); // the program's clock is the real one

function rootInput(version: number): RootInput {
  return {
    version, signedAt: NOW,
    roles: { root: { keys: [root1, root2, root3], threshold: 2 }, release: { keys: [rel1] }, rollout: { keys: [roll1] }, commands: { keys: [cmd1] } },
  };
}
const v1 = signRoot(rootInput(1), [root1, root2]);

describe.skipIf(skip !== undefined)("roles mode on Moddable's runtime (x-cli-lin)", { timeout: 300_000 }, () => {
  let lab: Lab, program: string;
  const works: string[] = [];
  beforeAll(async () => {
    program = await built();
    lab = await Lab.create({ key: rel1 });
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await lab?.close();
    for (const w of works) rmSync(w, { recursive: true, force: true });
  });

  /**
   * One device shipped with root v1, pinned to the lab's CA (CA1) for the update host and the broker,
   * until it is idle: from the factory image, or from the flash file (and NVS) a previous run left.
   */
  async function run(dir: string, manifestUrl: string, o: { flashPath?: string; deviceId?: string; mqtt?: { host: string; port: number; secure: boolean }; maxBoots?: number; bootTimeoutMs?: number } = {}): Promise<{ o: Outcome; device: ModdableDevice; logs: string[]; flashPath: string }> {
    let flashPath = o.flashPath;
    if (!flashPath) {
      const work = mkdtempSync(join(tmpdir(), "xsota-moddable-roles-"));
      works.push(work);
      flashPath = join(work, "flash.bin");
      lab.chip(FACTORY).save(flashPath);
    }
    const logs: string[] = [];
    const device = new ModdableDevice({
      program, flashPath, config: lab.config(manifestUrl, { ...FAST, root: toBase64(v1), ...(o.mqtt ? { mqtt: o.mqtt } : {}) }),
      caPem: lab.ca.caCertPem, deviceId: o.deviceId ?? "240ac4000001", hardware: "esp32-rev3", onLog: (l) => logs.push(l),
      ...(o.maxBoots !== undefined ? { maxBoots: o.maxBoots } : {}), ...(o.bootTimeoutMs !== undefined ? { bootTimeoutMs: o.bootTimeoutMs } : {}),
    });
    await device.run();
    return { o: outcomeOf(dir, device), device, logs, flashPath };
  }
  const tail = (logs: string[]) => logs.slice(-12).join("\n");

  it("installs the release both roles signed; refuses the stolen rollout key's own image and the legacy envelope", async () => {
    const once = async (bundle: (p: ReturnType<Lab["publish"]>) => Uint8Array) => {
      const dir = `roles-moddable-${lab.nextRun()}`;
      const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
      lab.host.setRoute(`/${dir}/release.json`, bundle(p));
      return run(dir, p.manifestUrl);
    };
    // the thief's image, signed as a release by the rollout key it holds
    const thief = await once((p) => createRollout({ release: createManifest({ product: "xsota-demo", version: "1.1.0", secureVersion: 1, url: p.imageUrl, image: p.image, keys: [roll1] }), keys: [roll1] }));
    expect([thief.o.running?.version, thief.o.final, thief.o.code], tail(thief.logs)).toEqual(["1.0.0", "refused", "ROLE_THRESHOLD"]);
    // the plain (legacy) envelope, no rollout document: not taken in roles mode
    const legacy = await once((p) => p.envelope);
    expect([legacy.o.running?.version, legacy.o.final], tail(legacy.logs)).toEqual(["1.0.0", "refused"]);
    const good = await once((p) => createRollout({ release: p.envelope, rollout: { id: "r", percent: 100 }, keys: [roll1] }));
    expect([good.o.running?.version, good.o.final], tail(good.logs)).toEqual(["1.1.0", "committed"]);
    for (const r of [thief, legacy, good]) expect(r.logs.filter((l) => l.startsWith("@panic"))).toEqual([]);
  });

  it("a device on root 1 walks the roots the bundle skips (root.2.json, root.3.json beside the manifest), then takes the bundle's root 4", async () => {
    const dir = `walk-moddable-${lab.nextRun()}`;
    const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
    lab.host.setRoute(`/${dir}/release.json`, createRollout({ release: p.envelope, rollout: { id: "r", percent: 100 }, keys: [roll1], roots: [signRoot(rootInput(4), [root1, root2])] }));
    lab.host.setRoute(`/${dir}/root.2.json`, signRoot(rootInput(2), [root1, root2]));
    lab.host.setRoute(`/${dir}/root.3.json`, signRoot(rootInput(3), [root1, root2]));
    const walked = await run(dir, p.manifestUrl);
    expect([walked.o.running?.version, walked.o.final], tail(walked.logs)).toEqual(["1.1.0", "committed"]);
    expect(new RootStore(walked.device.store(), toBase64(v1), nodeCrypto).current().version).toBe(4);
    expect(walked.logs.filter((l) => /ota root \d taken/.test(l))).toEqual(["ota root 2 taken (root.2.json)", "ota root 3 taken (root.3.json)"]);
  });

  it("CA rollover: a device pinned to CA1 takes CA2 from a new root (listed first or second), then downloads from a CA2 host", async () => {
    const leaf2 = await makeServerCert(lab.otherCa, { hosts: ["127.0.0.1", "localhost"] });
    const host2 = await startUpdateHost({ cert: leaf2.certPem, key: leaf2.keyPem, clock: lab.clock, routes: {} });
    try {
      const dir = `ca-moddable-${lab.nextRun()}`;
      const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
      host2.setRoute(`/${dir}/fw.bin`, p.image); // the image lives on the CA2 host
      const rel = createManifest({ product: "xsota-demo", version: "1.1.0", secureVersion: 1, url: `${host2.url}/${dir}/fw.bin`, image: p.image, keys: [rel1] });
      const once = (bundle: Uint8Array) => {
        lab.host.setRoute(`/${dir}/release.json`, bundle);
        return run(dir, p.manifestUrl);
      };
      const ca1 = { id: "ca1", pem: lab.ca.caCertPem }, ca2 = { id: "ca2", pem: lab.otherCa.caCertPem };
      // root v1 has no anchors: the pinned CA1 alone, and the CA2 host is not trusted
      const before = await once(createRollout({ release: rel, keys: [roll1] }));
      expect([before.o.running?.version, before.o.final, before.o.code], tail(before.logs)).toEqual(["1.0.0", "failed", "HTTP_TLS"]);
      // root v2 adds CA2 next to CA1 (the overlap), carried by the rollout document: CA2 first, then CA2 second
      for (const anchors of [[ca2, ca1], [ca1, ca2]]) {
        const v2 = signRoot({ ...rootInput(2), anchors }, [root1, root2]);
        const after = await once(createRollout({ release: rel, keys: [roll1], roots: [v2] }));
        const ids = anchors.map((a) => a.id);
        expect([after.o.running?.version, after.o.final], `${ids.join(", ")}\n${tail(after.logs)}`).toEqual(["1.1.0", "committed"]);
        // the anchors live in NVS with the root (Moddable's preference file)
        const stored = new RootStore(after.device.store(), toBase64(v1), nodeCrypto).current();
        expect([stored.version, stored.anchors.map((a) => a.id)]).toEqual([2, ids]);
        expect(after.logs.filter((l) => l.startsWith("@panic"))).toEqual([]);
      }
      // the same v2 signed below the root threshold does not bring CA2: refused
      const weak = signRoot({ ...rootInput(2), anchors: [ca2] }, [root1]);
      const refused = await once(createRollout({ release: rel, keys: [roll1], roots: [weak] }));
      expect([refused.o.running?.version, refused.o.final, refused.o.code], tail(refused.logs)).toEqual(["1.0.0", "refused", "ROLE_THRESHOLD"]);
    } finally {
      await host2.close();
    }
  });

  it.skipIf(!findMosquitto())("broker CA rollover: pinned to CA1 for its broker, the device reports through a CA2 mosquitto once root v2 lists [ca1, ca2] (CA2 second); root v3 [ca2] retires CA1", async () => {
    const tls = mkdtempSync(join(tmpdir(), "xsota-moddable-roles-broker-"));
    works.push(tls);
    const leaf = await makeServerCert(lab.otherCa, { hosts: ["127.0.0.1"] });
    writeFileSync(join(tls, "broker.pem"), leaf.certPem);
    writeFileSync(join(tls, "broker.key"), leaf.keyPem);
    const broker = await startBroker({ kind: "mosquitto", mosquittoTls: { certFile: join(tls, "broker.pem"), keyFile: join(tls, "broker.key") } });
    const ca1 = { id: "ca1", pem: lab.ca.caCertPem }, ca2 = { id: "ca2", pem: lab.otherCa.caCertPem };
    const v2 = signRoot({ ...rootInput(2), anchors: [ca1, ca2] }, [root1, root2]);
    const v3 = signRoot({ ...rootInput(3), anchors: [ca2] }, [root1, root2]);
    let n = 0;
    const reported = async (bundle: (p: ReturnType<Lab["publish"]>) => Uint8Array, version: string, more: { flashPath?: string; maxBoots?: number; bootTimeoutMs?: number } = {}) => {
      const deviceId = `mdca${++n}`.padEnd(12, "0");
      const watch = subscribe(broker, `watch-${deviceId}`, [`devices/${deviceId}/version`]);
      await watch.ready;
      try {
        const dir = `broker-ca-moddable-${lab.nextRun()}`;
        const p = lab.publish(dir, { image: { version, secureVersion: 1 } });
        lab.host.setRoute(`/${dir}/release.json`, bundle(p));
        const r = await run(dir, p.manifestUrl, { deviceId, mqtt: { host: "127.0.0.1", port: broker.tlsPort!, secure: true }, ...more });
        // the retained version, if the device published one, is delivered to the plain listener's subscriber
        await realWait(() => watch.messages.length > 0, 2000).catch(() => undefined);
        return { ...r, versions: watch.messages.map((m) => m.payload) };
      } finally {
        watch.client.close();
      }
    };
    const release = (p: ReturnType<Lab["publish"]>, version: string) => createManifest({ product: "xsota-demo", version, secureVersion: 1, url: p.imageUrl, image: p.image, keys: [rel1] });
    try {
      // root v1: CA1 alone, the CA2 broker refused: the new image's self-test (its broker check) fails, 1.0.0 stays, nothing reported.
      // The program does not end while its reporter keeps reconnecting (those timers are work, main.ts):
      // the third boot (1.0.0 again, after the rollback) is ended by the driver's timeout.
      const before = await reported((p) => createRollout({ release: release(p, "1.1.0"), rollout: { id: "r", percent: 100 }, keys: [roll1] }), "1.1.0", { maxBoots: 3, bootTimeoutMs: 20_000 });
      expect([before.o.running?.version, before.o.bootVersions, before.device.counters.watchdogs, before.versions], tail(before.logs)).toEqual(["1.0.0", ["1.0.0", "1.1.0", "1.0.0"], 1, []]);
      expect(before.device.events.find((e) => e.state === "rolled-back")?.detail, tail(before.logs)).toMatch(/check 'broker' failed/);
      expect(before.logs.some((l) => /reporter: MQTT_CONNECT/.test(l)), tail(before.logs)).toBe(true);
      // root v2 lists CA2 after CA1: taken with the release, the device reports through the CA2 listener
      const after = await reported((p) => createRollout({ release: release(p, "1.1.0"), rollout: { id: "r", percent: 100 }, keys: [roll1], roots: [v2] }), "1.1.0");
      expect([after.o.running?.version, after.o.final], tail(after.logs)).toEqual(["1.1.0", "committed"]);
      expect(after.versions, tail(after.logs)).toContain("1.1.0");
      // root v3 retires CA1: the next release's image on the CA1 host is refused; the CA2 broker still trusted
      const retired = await reported((p) => createRollout({ release: release(p, "1.2.0"), rollout: { id: "r", percent: 100 }, keys: [roll1], roots: [v3] }), "1.2.0", { flashPath: after.flashPath });
      expect([retired.o.running?.version, retired.o.final, retired.o.code], tail(retired.logs)).toEqual(["1.1.0", "failed", "HTTP_TLS"]);
      expect(retired.versions, tail(retired.logs)).toContain("1.1.0");
      for (const r of [before, after, retired]) expect(r.logs.filter((l) => l.startsWith("@panic"))).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
