/*
 * The fleet controller in roles mode (issue 29 item 1): it holds only the online rollout and
 * commands keys; each stage and halt is a rollout document naming the release role's envelope by
 * hash, with a metaVersion that grows, so a device that saw the halt refuses the earlier stage's
 * document served again. Real broker (aedes), real signatures, the device's own verifiers.
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan } from "../../backend/fleet/controller";
import { generateKey } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { signRoot } from "../../backend/release/roles-tool";
import { RootStore, verifyBundle } from "../../modules/roles";
import { checkFreshness } from "../../modules/freshness";
import { toBase64 } from "../../modules/bytes";
import { SimChip } from "../../host-sim/chip/chip";
import { nodeCrypto } from "../../backend/crypto";
import { subscribe, realWait } from "./helpers";
import { codeOf } from "../codes";

const [rootKey, rel, roll, cmd] = [generateKey("ecdsa-p256"), generateKey("ecdsa-p256"), generateKey("ecdsa-p256"), generateKey("ecdsa-p256")];

describe("fleet controller in roles mode", () => {
  let broker: Broker | undefined;
  let dir = "";
  const cleanup: (() => void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("announces rollout documents for the release role's envelope; the halt's grows the version, so the earlier stage replayed is refused", async () => {
    broker = await startBroker({ kind: "aedes" });
    dir = mkdtempSync(join(tmpdir(), "xsota-roles-"));
    const clock = new VirtualClock();
    const log = new AuditLog(join(dir, "audit.db"));
    const controller = await FleetController.start({ broker, log, clock, virtualClock: clock, roles: { rollout: roll, commands: cmd }, fanoutHoldMs: 50 });
    cleanup.push(() => controller.close(), () => log.close());
    const watch = subscribe(broker, "watch", ["releases/thermo/stable"]);
    await watch.ready;
    cleanup.push(() => watch.client.close());

    const root = signRoot({ version: 1, signedAt: clock.wallTime(), roles: { root: { keys: [rootKey] }, release: { keys: [rel] }, rollout: { keys: [roll] }, commands: { keys: [cmd] } } }, [rootKey]);
    const store = SimChip.create({}).store();
    const roots = new RootStore(store, toBase64(root), nodeCrypto);
    const fields = { product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/thermo-1.1.0.bin", size: 65536, sha256: "ab".repeat(32) };
    const release = createManifest({ ...fields, signedAt: clock.wallTime(), keys: [rel] });

    await expect(controller.startRelease(fields, parsePlan("100")), "no release envelope").rejects.toMatchObject({ code: "USAGE" });
    const r = await controller.startRelease(fields, parsePlan("100"), "thermo-r1", release);
    await realWait(() => watch.messages.length > 0);
    const first = Buffer.from(watch.messages.at(-1)!.payload);
    const m1 = verifyBundle(first, roots, nodeCrypto, clock.wallTime()).manifest;
    expect(m1).toMatchObject({ version: "1.1.0", rollout: { id: r.id, percent: 100 } });
    checkFreshness(m1, { product: "thermo", channel: "stable" }, store, clock.wallTime());

    await controller.halt();
    await realWait(() => watch.messages.length > 1);
    const halted = verifyBundle(Buffer.from(watch.messages.at(-1)!.payload), roots, nodeCrypto, clock.wallTime()).manifest;
    expect(halted.rollout!.percent).toBe(0);
    expect(halted.metaVersion).toBeGreaterThan(m1.metaVersion);
    checkFreshness(halted, { product: "thermo", channel: "stable" }, store, clock.wallTime());
    // the 100 % document served again after the halt
    expect(codeOf(() => checkFreshness(verifyBundle(first, roots, nodeCrypto, clock.wallTime()).manifest, { product: "thermo", channel: "stable" }, store, clock.wallTime()))).toBe("MANIFEST_REPLAY");
    // the controller's key is not a release key: what it signs as a release is refused
    const own = createManifest({ ...fields, version: "6.6.6", keys: [roll] });
    const { createRollout } = await import("../../backend/release/roles-tool");
    expect(codeOf(() => verifyBundle(createRollout({ release: own, keys: [roll] }), roots, nodeCrypto, clock.wallTime()))).toBe("ROLE_THRESHOLD");
  }, 60_000);
});
