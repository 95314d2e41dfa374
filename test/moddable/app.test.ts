/*
 * The app outside the repo's source that test/device/esp32-build.test.ts builds for esp32 and two
 * boards (test/device/outside-app.ts: its own name and main.js, the component included), built
 * for Moddable's runtime for Linux through the project's host program (host-sim/engines/moddable/build.ts
 * buildAppProgram: moddable-host with the app's main, run with --app) and updated against the
 * update host `xsota serve` runs, one process per boot over a flash file: an application self-test
 * that passes commits the release, one that fails rolls it back. On Linux both images run the same
 * program, so the app's check looks at the running version to stand for code that differs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { ModdableDevice } from "../../host-sim/engines/moddable/driver";
import { buildAppProgram, moddableTree } from "../../host-sim/engines/moddable/build";
import { writeOutsideApp } from "../device/outside-app";

describe.skipIf(skip !== undefined)("an app that includes the component, on Moddable's runtime (x-cli-lin)", { timeout: 240_000 }, () => {
  let lab: Lab;
  let program: string;
  const work = mkdtempSync(join(tmpdir(), "xsota-app-"));
  beforeAll(async () => {
    await built(); // the tools and the base program (a failed build fails here)
    const tree = moddableTree();
    if ("skip" in tree) throw new Error(tree.skip);
    program = await buildAppProgram(tree.root, writeOutsideApp(work), join(work, "build"));
    lab = await Lab.create();
  }, BUILD_WAIT_MS + 300_000);
  afterAll(async () => {
    await lab?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("updates itself: its self-test passes on 1.1.0 (committed), fails on 1.2.0 (rolled back to 1.1.0, cause named)", async () => {
    const flashPath = join(work, "flash.bin");
    lab.chip(FACTORY).save(flashPath);
    const first = lab.publish("app", { image: { version: "1.1.0" } });
    const config = lab.config(first.manifestUrl, { diagnostics: { windowMs: 5000, heapFloor: 1024, checkTimeoutMs: 4000 } });
    const device = new ModdableDevice({ program, flashPath, config, caPem: lab.ca.caCertPem, deviceId: "240ac4000042", hardware: "esp32-rev3", programArgs: ["--app"] });
    await device.run();
    expect(device.running?.version, device.logs.slice(-10).join("\n")).toBe("1.1.0");
    const committed = device.events.find((e) => e.state === "committed");
    expect(committed?.to ?? committed?.from).toBe("1.1.0");

    lab.publish("app", { image: { version: "1.2.0" } });
    device.powerCycle();
    await device.run();
    expect(device.bootRecords.map((b) => b.version)).toEqual(["1.0.0", "1.1.0", "1.1.0", "1.2.0", "1.1.0"]);
    expect(device.running?.version).toBe("1.1.0");
    const rolledBack = device.events.find((e) => e.state === "rolled-back");
    expect(rolledBack?.code, device.logs.slice(-10).join("\n")).toBe("CONFIRM_DIAGNOSTICS");
    expect(JSON.stringify(rolledBack)).toMatch(/sensor/);
  });
});
