/*
 * The hostile broker on Moddable's runtime: the device's binding (src/mqtt.ts over the SDK's
 * mqtt.js, which allocates a PUBLISH's claimed length before reading it) refuses a PUBLISH that
 * claims 200 MB from its header, ends that connection with MQTT_PROTOCOL and goes on: the update
 * commits. Without the bound, mqtt.js asks XS for the 200 MB: this Linux host grants it (tried:
 * the update still commits, with no MQTT_PROTOCOL in the log, so this test fails); a chip with
 * 300 KB of RAM cannot, and XS aborts, which restarts it (during a self-test: a good release rolled
 * back). test/fleet/hostile-broker.test.ts: the same bound on Node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab } from "../../host-sim/lab/lab";
import { scenarios } from "../../host-sim/lab/scenarios";
import { runModdableScenario } from "../../host-sim/engines/moddable/scenarios";
import { MAX_MQTT_PACKET } from "../../modules/reporter";
import { hostileServer, claimedPublish } from "../fleet/hostile-server";

describe.skipIf(skip !== undefined)("a hostile broker, on Moddable's runtime (x-cli-lin)", { timeout: 180_000 }, () => {
  let lab: Lab;
  let program: string;
  beforeAll(async () => {
    program = await built();
    lab = await Lab.create();
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await lab?.close();
  });

  it("a PUBLISH claiming 200 MB: the connection ends (MQTT_PROTOCOL) before mqtt.js allocates it; the update commits", async () => {
    // the first connection only: the device's reporter reconnects, the next session is a broker's,
    // and the program ends once the agent is idle
    const hostile = await hostileServer((socket, n) => {
      if (n > 1) return;
      socket.write(claimedPublish(200 * 1024 * 1024));
      const t = setInterval(() => socket.writable && socket.write(Buffer.alloc(1024, 0x41)), 5);
      socket.on("close", () => clearInterval(t));
    });
    try {
      const logs: string[] = [];
      const happy = scenarios.find((s) => s.name === "happy")!;
      const m = await runModdableScenario(happy, lab, { program, mqtt: { host: "127.0.0.1", port: hostile.port }, onLog: (l) => logs.push(l) });
      expect(m.final, logs.slice(-10).join("\n")).toBe("committed");
      expect(logs.join("\n")).toContain(`MQTT_PROTOCOL: packet of ${200 * 1024 * 1024} bytes (at most ${MAX_MQTT_PACKET})`);
      expect(logs.filter((l) => l.startsWith("@panic"))).toEqual([]);
      expect(hostile.connections()).toBeGreaterThanOrEqual(2);
    } finally {
      hostile.server.close();
    }
  });
});
