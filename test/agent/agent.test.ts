/*
 * The agent's entry points on SIM's chip: the slot writer's begin/write/finish/abort discipline,
 * POLICY_BUSY while the running image awaits confirmation, and a resume across a reboot.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { Lab, writeImage } from "../../host-sim/lab/lab";
import { Agent } from "../../modules/agent";
import { Outbox } from "../../modules/outbox";
import { JournalStore, type Journal } from "../../modules/journal";
import { UpdateSlot } from "../../modules/install";
import { BootControl } from "../../modules/bootctl";
import { OtaState, encodeEntry, OTA_SECTOR } from "../../modules/otadata";
import { nodeCrypto } from "../../backend/crypto";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { SimSystem } from "../../host-sim/engines/ports/system";
import { driveDevice } from "../../host-sim/chip/device";
import { scenarios, runScenario, stageScenario } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import type { Ports } from "../../modules/ports";
import type { SimChip } from "../../host-sim/chip/chip";

let lab: Lab;
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
function snapshot(chip: SimChip, label: string): string {
  const p = chip.partition(label);
  const b = new Uint8Array(p.byteLength);
  p.read(0, b);
  return digest(b);
}

const https: NodeHttp[] = [];
/** Drive virtual time as SimDevice does (no jump while a request awaits its headers). */
const drive = (done: () => boolean) => driveDevice(lab.clock, done, { quietMs: 100 }, () => https.some((h) => h.waiting > 0));

function ports(chip: SimChip, running: number): Ports {
  const http = new NodeHttp({ ca: lab.ca.caCertPem, clock: lab.clock });
  https.push(http);
  return {
    flash: chip.flashPort(running), store: chip.store(), http,
    crypto: nodeCrypto, clock: lab.clock,
    system: new SimSystem({ deviceId: "240ac4000002", hardware: "esp32-rev3", resetReason: "power-on", onRestart: () => {}, onLog: () => {} }),
  };
}

describe("UpdateSlot: begin / write / finish / abort", () => {
  it("checks its state at every entry", () => {
    const chip = lab.chip();
    const p = chip.flashPort(0);
    const boot = new BootControl(p);
    const slot = new UpdateSlot(p);
    expect(() => slot.write(new Uint8Array(16))).toThrow(expect.objectContaining({ code: "OTADATA_STATE" }));
    expect(() => slot.finish(boot)).toThrow(expect.objectContaining({ code: "OTADATA_STATE" }));
    expect(() => slot.begin(2 * 1024 * 1024)).toThrow(expect.objectContaining({ code: "IMAGE_TOO_LARGE" }));
    slot.begin(8192);
    slot.write(new Uint8Array(4096));
    expect(() => slot.complete()).toThrow(expect.objectContaining({ code: "DOWNLOAD_SIZE" }));
    expect(() => slot.write(new Uint8Array(8192))).toThrow(expect.objectContaining({ code: "IMAGE_TOO_LARGE" }));
    slot.write(new Uint8Array(4096));
    slot.complete();
    expect(() => slot.finish(boot)).toThrow(expect.objectContaining({ code: "OTADATA_STATE" })); // not verified
    slot.abort();
    expect(() => slot.markVerified()).toThrow(expect.objectContaining({ code: "OTADATA_STATE" }));
    slot.abort();
    expect(slot.state).toBe("aborted");
  });

  it("finish switches otadata only from verified: next seq, state NEW, the other sector", () => {
    const chip = lab.chip();
    const app0 = snapshot(chip, "app0");
    const p = chip.flashPort(0);
    const slot = new UpdateSlot(p);
    slot.begin(4096);
    slot.write(new Uint8Array(4096));
    slot.complete();
    slot.markVerified();
    slot.finish(new BootControl(p));
    const view = new BootControl(p).read();
    expect(view.entries[0]).toMatchObject({ seq: 2, state: OtaState.NEW });
    expect(view.entries[1].seq).toBe(0xffffffff);
    expect(snapshot(chip, "app0")).toBe(app0);
  });
});

describe("Agent", () => {
  it("refuses to download while the running image is PENDING_VERIFY (POLICY_BUSY), touching nothing", async () => {
    const rel = lab.publish("busy", { image: { version: "1.2.0" } });
    const chip = lab.chip();
    writeImage(chip, "app1", lab.image({ version: "1.1.0" }));
    const ota = chip.partition("otadata");
    ota.eraseBlock(0);
    ota.write(0, encodeEntry(2, OtaState.PENDING_VERIFY));
    const before = { app0: snapshot(chip, "app0"), otadata: snapshot(chip, "otadata") };
    const logs: string[] = [];
    const p = ports(chip, 1);
    p.system = new SimSystem({ deviceId: "240ac4000002", hardware: "esp32-rev3", resetReason: "power-on", onRestart: () => {}, onLog: (l) => logs.push(l) });
    const agent = new Agent(p, lab.config(rel.manifestUrl));
    expect(agent.running).toMatchObject({ version: "1.1.0", slot: 1 });
    let out: Awaited<ReturnType<Agent["check"]>> | undefined;
    void agent.check().then((o) => { out = o; });
    await drive(() => out !== undefined);
    expect(out, JSON.stringify(out) + logs.join("\n")).toMatchObject({ state: "refused", code: "POLICY_BUSY" });
    expect(snapshot(chip, "app0")).toBe(before.app0);
    expect(snapshot(chip, "otadata")).toBe(before.otadata);
    expect(agent.outbox.pending().map((e) => e.code)).toContain("POLICY_BUSY");
  });

  it("a reboot mid-download resumes from the journaled offset with Range + If-Range", async () => {
    const happy = scenarios.find((s) => s.name === "happy")!;
    const s = { ...happy, name: "resume", config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192 } } };
    const engine = createNodeEngine();
    let resumed: { range: string; ifRange?: string } | undefined;
    for (let n = 20; n < 60 && !resumed; n += 4) {
      const from = lab.host.stats.log.length;
      const o = await runScenario(s, engine, lab, { powerCutAt: n });
      expect(o.running?.version).toBe("1.1.0");
      const ranged = lab.host.stats.log.slice(from).find((r) => r.path.includes("fw-") && r.range);
      if (ranged) resumed = { range: ranged.range!, ...(ranged.ifRange ? { ifRange: ranged.ifRange } : {}) };
    }
    expect(resumed).toBeDefined();
    const at = Number(/bytes=(\d+)-/.exec(resumed!.range)![1]);
    expect(at).toBeGreaterThan(0);
    expect(at % 8192).toBe(0);
    expect(resumed!.ifRange).toMatch(/^".+"$/);
  });

  it("a failed self-test with nothing to roll back to keeps running: CONFIRM_NO_ROLLBACK, entry VALID, no restart", async () => {
    const rel = lab.publish("norollback", { image: { version: "1.1.0" } });
    const chip = lab.chip();
    writeImage(chip, "app1", lab.image({ version: "1.1.0" }));
    const app0 = chip.partition("app0");
    for (let b = 0; b < 16; b++) app0.eraseBlock(b); // the previous image is gone
    const ota = chip.partition("otadata");
    ota.eraseBlock(0);
    ota.write(0, encodeEntry(2, OtaState.PENDING_VERIFY));
    const p = ports(chip, 1);
    let restarts = 0;
    p.system = new SimSystem({ deviceId: "240ac4000003", hardware: "esp32-rev3", resetReason: "software", onRestart: () => { restarts++; }, onLog: () => {} });
    const agent = new Agent(p, lab.config(rel.manifestUrl), {}, { checks: [{ name: "app", run: () => false }] });
    let out: Awaited<ReturnType<Agent["boot"]>> | undefined;
    void agent.boot().then((o) => { out = o; });
    await drive(() => out !== undefined);
    expect(out).toMatchObject({ action: "self-test", state: "failed", code: "CONFIRM_NO_ROLLBACK" });
    expect(restarts).toBe(0);
    expect(new BootControl(p.flash).runningState()).toBe(OtaState.VALID);
  });

  it("a failed self-test with a valid previous image marks INVALID and restarts", async () => {
    const rel = lab.publish("rollbackunit", { image: { version: "1.1.0" } });
    const chip = lab.chip();
    writeImage(chip, "app1", lab.image({ version: "1.1.0" }));
    const ota = chip.partition("otadata");
    ota.eraseBlock(0);
    ota.write(0, encodeEntry(2, OtaState.PENDING_VERIFY));
    const p = ports(chip, 1);
    let restarts = 0;
    p.system = new SimSystem({ deviceId: "240ac4000004", hardware: "esp32-rev3", resetReason: "software", onRestart: () => { restarts++; }, onLog: () => {} });
    const agent = new Agent(p, lab.config(rel.manifestUrl), {}, { checks: [{ name: "app", run: () => { throw new Error("sensor missing"); } }] });
    let out: Awaited<ReturnType<Agent["boot"]>> | undefined;
    void agent.boot().then((o) => { out = o; });
    await drive(() => out !== undefined);
    expect(out).toMatchObject({ state: "rolled-back", code: "CONFIRM_DIAGNOSTICS" });
    expect(restarts).toBe(1);
    expect(new BootControl(p.flash).read().entries[0]).toMatchObject({ seq: 2, state: OtaState.INVALID });
  });

  it("the update loop checks again every checkIntervalMs (+-10 %) and picks up a new release", async () => {
    const engine = createNodeEngine();
    const first = lab.publish("loop", { image: { version: "1.0.0" } });
    const dev = lab.device(engine, lab.chip(), lab.config(first.manifestUrl, { checkIntervalMs: 600_000 }), { deviceId: "240ac4000009" });
    const t0 = lab.clock.now();
    const manifestGets = () => lab.host.stats.log.filter((r) => r.path === "/loop/release.json" && r.method === "GET").length;
    const before = manifestGets();
    await dev.run(() => lab.clock.now() - t0 > 1_900_000, { quietMs: 100 });
    const checks = manifestGets() - before;
    expect(checks).toBeGreaterThanOrEqual(3); // at boot, then about every 10 min
    expect(checks).toBeLessThanOrEqual(4);
    expect(dev.events).toEqual([]); // the steady state is not reported
    lab.publish("loop", { image: { version: "1.1.0" } });
    await dev.run((d) => d.events.some((e) => e.state === "committed"), { quietMs: 100 });
    expect(dev.running?.version).toBe("1.1.0");
    await dev.stop();
  });

  it("an announced envelope is used as is, and force overrides only the rollout", async () => {
    const rel = lab.publish("announce", { image: { version: "1.1.0" }, manifest: { rollout: { id: "r1", percent: 0 } } });
    const chip = lab.chip();
    const p = ports(chip, 0);
    let restarts = 0;
    p.system = new SimSystem({ deviceId: "240ac4000005", hardware: "esp32-rev3", resetReason: "power-on", onRestart: () => { restarts++; }, onLog: () => {} });
    const agent = new Agent(p, lab.config("https://127.0.0.1:1/nowhere.json"));
    const check = async (o: Parameters<Agent["check"]>[0]) => {
      let out: Awaited<ReturnType<Agent["check"]>> | undefined;
      void agent.check(o).then((x) => { out = x; });
      await drive(() => out !== undefined);
      return out!;
    };
    expect(await check({ manifest: rel.envelope })).toMatchObject({ state: "refused", code: "POLICY_ROLLOUT" });
    expect(await check({ manifest: rel.envelope, force: true })).toMatchObject({ state: "rebooting", version: "1.1.0" });
    expect(restarts).toBe(1);
    expect(new BootControl(p.flash).read().entries[0]).toMatchObject({ seq: 2, state: OtaState.NEW });
    const tampered = rel.envelope.slice();
    tampered[40] ^= 1;
    const again = new Agent(ports(lab.chip(), 0), lab.config("https://127.0.0.1:1/nowhere.json"));
    let out: Awaited<ReturnType<Agent["check"]>> | undefined;
    void again.check({ manifest: tampered, force: true }).then((x) => { out = x; });
    await drive(() => out !== undefined);
    expect(out!.state).toBe("refused");
    expect(out!.code).toMatch(/^(SIG_|MANIFEST_)/);
  });

  it("every reported event is in the NVS outbox, in seq order, across the reboot", async () => {
    const rel = lab.publish("outbox", { image: { version: "1.1.0" } });
    const chip = lab.chip();
    const dev = lab.device(createNodeEngine(), chip, lab.config(rel.manifestUrl), { deviceId: "240ac4000010" });
    await dev.run((d) => d.idle, { quietMs: 100 });
    await dev.stop();
    const stored = new Outbox(chip.store(), { capacity: 32 }).pending();
    expect(stored.map((e) => [e.state, e.progress ?? null])).toEqual(dev.events.map((e) => [e.state, e.progress ?? null]));
    expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
    expect(stored.at(-1)).toMatchObject({ state: "committed", from: "1.0.0", to: "1.1.0" });
  });

  it("a network-caused rollback is reported with its cause and retried after the backoff, in virtual time", async () => {
    const s = scenarios.find((x) => x.name === "network-never-retry")!;
    const { config } = stageScenario(s, lab);
    const dev = lab.device(createNodeEngine(), lab.chip(), config, { ...s.device, deviceId: "240ac4000011" });
    await dev.run((d) => d.idle, { quietMs: 100, maxVirtualMs: 6 * 3600_000 });
    await dev.stop();
    const i = dev.events.findIndex((e) => e.state === "rolled-back");
    const rb = dev.events[i]!;
    expect(rb).toMatchObject({ code: "CONFIRM_NETWORK", from: "1.0.0", to: "1.1.0", detail: expect.stringMatching(/^cause: network \(1 of 3\), retried in \d+ ms/) });
    const delay = Number(/retried in (\d+) ms/.exec(rb.detail!)![1]);
    expect(delay).toBeGreaterThanOrEqual(30_000); // networkRetry.baseMs 60 s, half of it fixed
    expect(delay).toBeLessThanOrEqual(60_000);
    const retry = dev.events[i + 1]!;
    expect(retry.state).toBe("checking");
    expect(retry.uptime - rb.uptime).toBeGreaterThanOrEqual(delay);
    expect(dev.last()).toMatchObject({ state: "committed", to: "1.1.0" });
    const journal = new JournalStore(dev.chip.store());
    const sha = journal.load().journal!.sha256;
    expect(journal.netRollbacks(sha)).toBe(1);
    expect(journal.netHold(sha)).toBeGreaterThan(0); // the lab's wall clock is set: the hold survives a power cycle
  });

  it("a network rollback is counted once: a report repeated after a power cut does not count twice", async () => {
    const chip = lab.chip();
    const ota = chip.partition("otadata");
    ota.eraseBlock(0);
    ota.eraseBlock(1);
    ota.write(0, encodeEntry(1, OtaState.VALID));
    ota.write(OTA_SECTOR, encodeEntry(2, OtaState.ABORTED)); // the new image in slot 1, aborted by the bootloader
    const journal = new JournalStore(chip.store());
    const sha = "cd".repeat(32);
    const awaiting: Journal = { phase: "rebooting", from: "1.0.0", fromSlot: 0, to: "1.1.0", secureVersion: 1, sha256: sha, size: 65536, url: "https://h/fw.bin", targetSlot: 1, written: 65536, code: "CONFIRM_NETWORK", detail: "network not up" };
    const report = async (j: Journal) => {
      journal.save(j);
      const out = await new Agent(ports(chip, 0), lab.config(`${lab.url}/none.json`, { networkRetry: { baseMs: 1000, maxMs: 8000, maxAttempts: 3 } })).boot();
      return [out.code, out.retryMs !== undefined, journal.netRollbacks(sha)];
    };
    expect(await report(awaiting)).toEqual(["CONFIRM_NETWORK", true, 1]);
    expect(journal.load().journal).toMatchObject({ phase: "rolled-back" });
    expect(journal.load().journal!.netCounted).toBeUndefined();
    // Power cut after the count, before the journal closed: the same rollback is reported again, counted once.
    expect(await report({ ...awaiting, netCounted: true })).toEqual(["CONFIRM_NETWORK", true, 1]);
    expect(await report(awaiting)).toEqual(["CONFIRM_NETWORK", true, 2]); // the next install, rolled back
    expect(await report(awaiting)).toEqual(["CONFIRM_NETWORK", false, 3]); // the cap: no retry
    expect(journal.isBad(sha)).toBe(true);
  });

  it.each([
    ["an oversized manifest", new Uint8Array(9000).fill(0x20), "MANIFEST_TOO_LARGE"],
    ["a manifest that is not JSON", new TextEncoder().encode("<html>hello</html>"), "MANIFEST_SYNTAX"],
    ["a missing manifest", null, "HTTP_NOT_FOUND"],
  ] as const)("%s is reported with its code, nothing written", async (_what, body, code) => {
    const path = `/manifest-${code}/release.json`;
    lab.host.setRoute(path, body);
    const chip = lab.chip();
    const before = snapshot(chip, "app1");
    const agent = new Agent(ports(chip, 0), lab.config(`${lab.url}${path}`));
    let out: Awaited<ReturnType<Agent["check"]>> | undefined;
    void agent.check().then((x) => { out = x; });
    await drive(() => out !== undefined);
    expect(out!.code).toBe(code);
    expect(snapshot(chip, "app1")).toBe(before);
  });
});
