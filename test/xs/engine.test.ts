/*
 * The XS engine's boot lifecycle: a runaway loop is ended by the XS meter and reported as a
 * panic (the simulated device resets, as the task watchdog would); a throw out of main is the
 * same panic line as in the Node engine; after stop() the worker is gone and nothing of that
 * boot reaches the ports again; stop() is safe twice.
 */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { SimFlash } from "../../host-sim/chip/flash";
import { SimSystem } from "../../host-sim/engines/ports/system";
import { nodeCrypto } from "../../backend/crypto";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { createXsEngine } from "../../host-sim/engines/xs";
import type { Engine } from "../../host-sim/engines/engine";
import type { Ports } from "../../modules/ports";
import { bootFirmware } from "./fixtures/misbehave";
import { flashPort, memoryStore, nodeEngineFor } from "./helpers";

const FIXTURE = join(import.meta.dirname, "fixtures/misbehave.ts");

function device() {
  const clock = new VirtualClock();
  const flash = new SimFlash({ size: 64 * 1024 });
  const lines: string[] = [];
  const ports: Ports = {
    flash: flashPort(flash, { scratch: [0, 64 * 1024] }),
    store: memoryStore(),
    http: new NodeHttp({ ca: "none", clock }),
    crypto: nodeCrypto,
    clock,
    system: new SimSystem({ deviceId: "aa", hardware: "esp32-rev3", resetReason: "power-on", onRestart() {}, onLog: (l) => lines.push(l) }),
  };
  return { clock, flash, lines, ports };
}

describe("XS engine lifecycle", () => {
  it("a runaway loop is ended by the XS meter and reported as a panic", async () => {
    const engine = createXsEngine({ firmware: FIXTURE, meteringLimit: 2_000_000 });
    const d = device();
    const fw = await engine.boot(d.ports, { config: { mode: "spin" }, behavior: "healthy" });
    await driveUntil(d.clock, () => d.lines.some((l) => l.startsWith("@panic")), { maxRealMs: 10_000 });
    expect(d.lines.find((l) => l.startsWith("@panic"))).toMatch(/too much computation/);
    await fw.stop();
    await engine.close();
  });

  it("a throw out of main is the same panic line as in the Node engine", async () => {
    const run = async (engine: Engine) => {
      const d = device();
      const fw = await engine.boot(d.ports, { config: { mode: "throw" }, behavior: "healthy" });
      await fw.stop();
      return d.lines;
    };
    const xs = createXsEngine({ firmware: FIXTURE });
    expect(await run(xs)).toEqual(await run(nodeEngineFor(bootFirmware)));
    expect(await run(xs)).toEqual(["@panic main failed on purpose"]);
    await xs.close();
  });

  it("after stop() the worker is gone and the boot's timers never reach the flash", async () => {
    const engine = createXsEngine({ firmware: FIXTURE });
    const d = device();
    const fw = await engine.boot(d.ports, { config: { mode: "late-write" }, behavior: "healthy" });
    expect(d.lines).toEqual(["booted"]);
    const ops = d.flash.ops;
    await fw.stop();
    await fw.stop();
    await expect(fw.probe()).rejects.toThrow(/XS worker ended|terminated/);
    d.clock.advance(5000);
    expect(d.flash.ops).toBe(ops);
    expect(d.clock.pending()).toBe(0);
    await engine.close();
  });
});
