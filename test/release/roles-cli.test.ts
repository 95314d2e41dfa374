/*
 * The roles through the command line, as a build server and an operator run them: keys from
 * xsota keygen, the release manifest from xsota manifest (release key), a root from xsota root
 * (offline root keys), the rollout from xsota rollout (online rollout key); each file held to the
 * device's own checks (modules/roles.ts verifyBundle over a RootStore in simulated NVS).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xsotaInProcess } from "./in-process-cli";
import { SimChip } from "../../host-sim/chip/chip";
import { nodeCrypto } from "../../backend/crypto";
import { RootStore, verifyBundle } from "../../modules/roles";
import { toBase64 } from "../../modules/bytes";
import { codeOf } from "../codes";

let dir: string;
const f = (name: string) => join(dir, name);
const ok = async (...argv: string[]) => {
  const r = await xsotaInProcess(...argv);
  expect(r.code, `xsota ${argv.join(" ")}: ${r.err}`).toBe(0);
  return r;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "xsota-roles-cli-"));
  for (const k of ["root1", "root2", "release", "rollout", "commands"]) await ok("keygen", "--type", "ecdsa-p256", "-o", f(`${k}.pem`), "--pub", f(`${k}.pub.pem`));
  await ok("image", "build", "--version", "1.1.0", "--size", "64K", "-o", f("fw.bin"));
  await ok("manifest", "--image", f("fw.bin"), "--url", "https://updates.example.com/fw.bin", "--key", f("release.pem"), "-o", f("release.json"));
  await ok("root", "--version", "1", "--key", f("root1.pem"), "--release-pub", f("release.pub.pem"), "--rollout-pub", f("rollout.pub.pem"), "--commands-pub", f("commands.pub.pem"), "-o", f("root.v1.json"));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const device = () => new RootStore(SimChip.create({}).store(), toBase64(readFileSync(f("root.v1.json"))), nodeCrypto);

describe("xsota root and xsota rollout", () => {
  it("a rollout signed by the rollout key over the release key's manifest installs; one signed by another key does not", async () => {
    await ok("rollout", "--release", f("release.json"), "--key", f("rollout.pem"), "--percent", "5", "--rollout-id", "r1", "-o", f("latest.json"));
    const { manifest } = verifyBundle(readFileSync(f("latest.json")), device(), nodeCrypto, Date.now());
    expect([manifest.version, manifest.rollout]).toEqual(["1.1.0", { id: "r1", percent: 5 }]);
    // the release key is not a rollout key, and the rollout key cannot sign a release
    await ok("rollout", "--release", f("release.json"), "--key", f("release.pem"), "-o", f("wrong-key.json"));
    expect(codeOf(() => verifyBundle(readFileSync(f("wrong-key.json")), device(), nodeCrypto, Date.now()))).toBe("ROLE_THRESHOLD");
    await ok("manifest", "--image", f("fw.bin"), "--url", "https://evil.example.com/fw.bin", "--key", f("rollout.pem"), "-o", f("thief.json"));
    await ok("rollout", "--release", f("thief.json"), "--key", f("rollout.pem"), "-o", f("thief-latest.json"));
    expect(codeOf(() => verifyBundle(readFileSync(f("thief-latest.json")), device(), nodeCrypto, Date.now()))).toBe("ROLE_THRESHOLD");
  });

  it("rotates the root through a rollout that carries root v2 signed by v1's key and its own; not by its own alone", async () => {
    const v2 = ["root", "--version", "2", "--root-pub", f("root2.pub.pem"), "--release-pub", f("release.pub.pem"), "--rollout-pub", f("rollout.pub.pem"), "--commands-pub", f("commands.pub.pem")];
    await ok(...v2, "--key", f("root2.pem"), "-o", f("root.v2-alone.json"));
    await ok("rollout", "--release", f("release.json"), "--key", f("rollout.pem"), "--root", f("root.v2-alone.json"), "-o", f("rot-bad.json"));
    const a = device();
    expect(codeOf(() => verifyBundle(readFileSync(f("rot-bad.json")), a, nodeCrypto, Date.now()))).toBe("ROLE_THRESHOLD");
    expect(a.current().version).toBe(1);
    await ok(...v2, "--key", f("root2.pem"), "--key", f("root1.pem"), "-o", f("root.v2.json"));
    await ok("rollout", "--release", f("release.json"), "--key", f("rollout.pem"), "--root", f("root.v2.json"), "-o", f("rot.json"));
    const b = device();
    verifyBundle(readFileSync(f("rot.json")), b, nodeCrypto, Date.now());
    expect(b.current().version).toBe(2);
  });

  it("xsota fleet run in roles mode holds only the rollout and commands keys: what it publishes verifies on the device", async () => {
    await ok("fleet", "run", "--manifest", f("release.json"), "--rollout-key", f("rollout.pem"), "--commands-key", f("commands.pem"), "--release-pub", f("release.pub.pem"),
      "--embedded", "aedes", "--mqtt-port", "0", "--http-port", "0", "--plan", "100", "--rollout-id", "r9", "--publish", f("fleet-latest.json"), "--db", f("fleet.db"));
    const { manifest } = verifyBundle(readFileSync(f("fleet-latest.json")), device(), nodeCrypto, Date.now());
    expect([manifest.version, manifest.rollout]).toEqual(["1.1.0", { id: "r9", percent: 100 }]);
    // a manifest the release key did not sign is refused before anything starts
    const bad = await xsotaInProcess("fleet", "run", "--manifest", f("thief.json"), "--rollout-key", f("rollout.pem"), "--commands-key", f("commands.pem"), "--release-pub", f("release.pub.pem"), "--embedded", "aedes", "--mqtt-port", "0", "--http-port", "0", "--db", f("fleet2.db"));
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining("SIG_")]);
  }, 60_000);

  it("bad usage: a threshold above the role's keys, a role without keys, a bad percent: USAGE, nothing written", async () => {
    const base = ["root", "--version", "1", "--key", f("root1.pem"), "--release-pub", f("release.pub.pem"), "--rollout-pub", f("rollout.pub.pem")];
    const noCommands = await xsotaInProcess(...base, "-o", f("x.json"));
    expect([noCommands.code, noCommands.err]).toEqual([2, expect.stringContaining("--commands-pub")]);
    const high = await xsotaInProcess(...base, "--commands-pub", f("commands.pub.pem"), "--release-threshold", "2", "-o", f("x.json"));
    expect([high.code, high.err]).toEqual([2, expect.stringContaining("--release-threshold 2")]);
    const pct = await xsotaInProcess("rollout", "--release", f("release.json"), "--key", f("rollout.pem"), "--percent", "101", "--rollout-id", "r", "-o", f("x.json"));
    expect(pct.code).toBe(2);
    expect(() => readFileSync(f("x.json"))).toThrow();
  });
});
