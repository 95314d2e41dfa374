/*
 * MQTT over TLS on Moddable's runtime (src/mqtt.ts over securesocket with src/tls-chain.ts's
 * check): a real mosquitto with a TLS listener whose certificate file holds the leaf alone (signed
 * by the lab's CA, which the device pins), and a plain listener for the test's own subscriber.
 * The device reports its version through the TLS listener while the happy update commits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab } from "../../host-sim/lab/lab";
import { scenarios } from "../../host-sim/lab/scenarios";
import { runModdableScenario } from "../../host-sim/engines/moddable/scenarios";
import { findMosquitto, startBroker, type Broker } from "../../backend/mqtt/broker";
import { makeServerCert, pemCertificates } from "../../backend/release/pki";
import { subscribe } from "../fleet/helpers";

describe.skipIf(skip !== undefined || !findMosquitto())("MQTT over TLS on Moddable's runtime, the broker sending its leaf alone (real mosquitto)", { timeout: 240_000 }, () => {
  let lab: Lab, program: string, broker: Broker, dir: string;
  beforeAll(async () => {
    program = await built();
    lab = await Lab.create();
    dir = mkdtempSync(join(tmpdir(), "xsota-mqtt-tls-"));
    const cert = await makeServerCert(lab.ca, { hosts: ["127.0.0.1"] });
    writeFileSync(join(dir, "leaf.pem"), pemCertificates(cert.certPem)[0]!);
    writeFileSync(join(dir, "leaf.key"), cert.keyPem);
    broker = await startBroker({ kind: "mosquitto", mosquittoTls: { certFile: join(dir, "leaf.pem"), keyFile: join(dir, "leaf.key") } });
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await broker?.close();
    await lab?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connects through the TLS listener, reports its version and commits the update", async () => {
    const watch = subscribe(broker, "watch", ["devices/#"]);
    await watch.ready;
    try {
      const logs: string[] = [];
      const happy = scenarios.find((s) => s.name === "happy")!;
      const m = await runModdableScenario(happy, lab, { program, mqtt: { host: "127.0.0.1", port: broker.tlsPort!, secure: true }, onLog: (l) => logs.push(l) });
      expect(m.final, logs.slice(-10).join("\n")).toBe("committed");
      expect(watch.messages.filter((x) => x.topic.endsWith("/version")).map((x) => x.payload), logs.slice(-10).join("\n")).not.toEqual([]);
      expect(logs.filter((l) => /MQTT_CONNECT|@panic/.test(l))).toEqual([]);
    } finally {
      watch.client.close();
    }
  });
});
