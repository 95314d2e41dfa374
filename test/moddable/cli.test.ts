/*
 * The release workflow against the Moddable runtime, as a user types it: xsota image build, keygen,
 * manifest, publish, `xsota serve --self-signed-ca` (leaf + CA, which Moddable's TLS needs), then
 * `xsota device --engine moddable` on a flash file from `xsota flash create`; `xsota flash show`
 * reads what the Moddable program wrote. Skipped like runtime.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../../host-sim/engines/moddable/build";
import { startBroker } from "../../backend/mqtt/broker";
import { subscribe, realWait, expectRetainedVersion } from "../fleet/helpers";

const XSOTA = join(REPO, "bin", "xsota.js");

/** xsota in a child without blocking this process (whose broker the child talks to). */
function xsotaAsync(cwd: string, ...args: string[]): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [XSOTA, ...args], { cwd, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    child.on("close", (status) => resolve({ status: status ?? -1, out }));
  });
}

describe.skipIf(skip !== undefined)("xsota device --engine moddable", { timeout: 240_000 }, () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url = "";
  let manifestUrl = "";
  beforeAll(async () => {
    await built(); // a failed build fails every test here
    dir = mkdtempSync(join(tmpdir(), "xsota-moddable-cli-"));
    // A short self-test window: Moddable's runtime runs on real time (30 s stays the default).
    mkdirSync(join(dir, "public"));
    writeFileSync(join(dir, "fast.json"), JSON.stringify({ diagnostics: { windowMs: 5000, heapFloor: 16384, checkTimeoutMs: 5000 } }));
    for (const args of [
      ["keygen", "-o", "release.pem", "--pub", "release.pub.pem"],
      ["image", "build", "--version", "1.0.0", "-o", "fw-1.0.0.bin"],
      ["image", "build", "--version", "1.1.0", "-o", "fw-1.1.0.bin"],
      ["flash", "create", "-o", "flash.bin", "--image", "fw-1.0.0.bin"],
    ]) expect((await xsotaAsync(dir, ...args)).status, args.join(" ")).toBe(0);
    server = spawn(process.execPath, [XSOTA, "serve", "--dir", "public", "--port", "0", "--self-signed-ca", "ca", "--json", "--quiet"], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
    url = await new Promise<string>((resolve, reject) => {
      let text = "";
      server!.stdout!.on("data", (b: Buffer) => {
        text += b.toString();
        const m = /"url":\s*"([^"]+)"/.exec(text);
        if (m) resolve(m[1]!);
      });
      server!.on("exit", (code) => reject(new Error(`serve exited ${code}`)));
    });
    const manifest = await xsotaAsync(dir, "manifest", "--image", "fw-1.1.0.bin", "--url", `${url}/`, "--key", "release.pem", "-o", "release.json");
    expect(manifest.status, manifest.out).toBe(0);
    const publish = await xsotaAsync(dir, "publish", "--dir", "public", "release.json", "fw-1.1.0.bin");
    expect(publish.status, publish.out).toBe(0);
    const list = spawnSync("find", ["public", "-name", "*.json"], { cwd: dir, encoding: "utf8" }).stdout.trim().split("\n");
    manifestUrl = `${url}/${list.find((p) => p.endsWith(".json"))!.replace(/^public\//, "")}`;
  }, BUILD_WAIT_MS + 120_000);
  afterAll(() => {
    server?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("updates a flash file from xsota flash create against xsota serve: committed, and flash show agrees", async () => {
    const run = await xsotaAsync(dir, "device", "--engine", "moddable", "--flash", "flash.bin", "--manifest", manifestUrl, "--ca", "ca/ca.pem", "--trust", "release.pub.pem",
      "--config", "fast.json", "--json");
    expect(run.status, run.out).toBe(0);
    const outcome = JSON.parse(run.out.slice(run.out.indexOf("{"))) as { final: string; running: { version: string; slot: number } };
    expect(outcome.final).toBe("committed");
    expect(outcome.running).toEqual({ version: "1.1.0", slot: 1 });
    const show = await xsotaAsync(dir, "flash", "show", "flash.bin", "--json");
    expect(show.status, show.out).toBe(0);
    expect(show.out).toContain("1.1.0");
  });

  it("--mqtt reports to a broker as a fleet device does: the version on every boot, retained, and each event", async () => {
    const broker = await startBroker({ kind: "aedes" });
    const id = "240ac40000a3";
    const live = subscribe(broker, `watch-${id}`, [`devices/${id}/#`]);
    try {
      await live.ready;
      expect((await xsotaAsync(dir, "flash", "create", "-o", "flash-mqtt.bin", "--image", "fw-1.0.0.bin")).status).toBe(0);
      const run = await xsotaAsync(dir, "device", "--engine", "moddable", "--flash", "flash-mqtt.bin", "--manifest", manifestUrl, "--ca", "ca/ca.pem",
        "--trust", "release.pub.pem", "--config", "fast.json", "--device-id", id, "--mqtt", `mqtt://${broker.host}:${broker.port}`, "--json");
      expect(run.status, run.out).toBe(0);
      await realWait(() => live.messages.some((m) => m.topic.endsWith("/events") && JSON.parse(m.payload).state === "committed"), 10_000);
      const versions = live.messages.filter((m) => m.topic === `devices/${id}/version`).map((m) => m.payload);
      expect(versions).toContain("1.0.0");
      expect(versions.at(-1)).toBe("1.1.0");
      const states = live.messages.filter((m) => m.topic === `devices/${id}/events`).map((m) => (JSON.parse(m.payload) as { state: string }).state);
      expect(states).toEqual(expect.arrayContaining(["checking", "downloading", "verifying", "installing", "rebooting", "confirming", "committed"]));
      await expectRetainedVersion(broker, id, "1.1.0");
    } finally {
      live.client.close();
      await broker.close();
    }
  });
});
