/*
 * Two controllers on one PostgreSQL audit log and one broker, each with its own connection pool
 * and its own persistent MQTT session, both watching the same release on one virtual clock:
 * their stage timers fire together, and the compare-and-set lets exactly one widen each stage
 * and announce it. Every event is in the log once, although both ingest it.
 */
import { describe, it, expect, afterEach } from "vitest";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { PgAuditLog } from "../../backend/fleet/audit-pg";
import { FleetController, parsePlan, type ReleaseFields } from "../../backend/fleet/controller";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { verifyManifest } from "../../modules/manifest";
import { keyFromConfig } from "../../modules/keys";
import { nodeCrypto } from "../../backend/crypto";
import { ScriptedDevice } from "./scripted-device";
import { subscribe } from "./helpers";
import { noPostgres, usePg, driveUntilAsync, waitFor } from "./pg";

const pg = usePg();
const key = generateKey("ecdsa-p256");
const release: ReleaseFields = { product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/thermo-1.1.0.bin", size: 65536, sha256: "ab".repeat(32) };

describe.skipIf(noPostgres !== undefined)("two controllers on one PostgreSQL audit log", () => {
  let broker: Broker | undefined;
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    await broker?.close();
  });

  it("widen each stage once between them, log each event once, and the survivor finishes alone", async () => {
    broker = await startBroker({ kind: "aedes" });
    const url = await pg.fresh();
    const clock = new VirtualClock();
    const watch = subscribe(broker, "watch", ["releases/thermo/stable"]);
    await watch.ready;
    cleanup.push(() => watch.client.close());
    const controllers: FleetController[] = [];
    for (const id of ["a", "b"]) {
      const log = await PgAuditLog.open(url);
      const c = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 150, clientId: `xsota-controller-${id}` });
      controllers.push(c);
      cleanup.push(() => log.close(), () => c.close());
    }
    const [a, b] = controllers as [FleetController, FleetController];
    const log = a.log;
    const devices = Array.from({ length: 30 }, (_, i) => new ScriptedDevice({
      id: `d${String(i).padStart(3, "0")}`, hardware: "esp32-rev3", bad: false, groups: [i % 2 ? "field" : "lab"], region: "eu",
    }, clock, broker!, keyConfigOf(key)));
    cleanup.push(() => devices.forEach((d) => d.close()));
    await driveUntilAsync(clock, async () => (await log.onlineOn("1.0.0")) === devices.length, { maxRealMs: 20_000 });

    const r = await a.startRelease(release, parsePlan("10:10m,30:10m,50:24h,80:10m,100:10m"), "thermo-1.1.0-two");
    // b learns of it on its next sample (60 s) and watches the same stage deadline as a.
    clock.advance(61_000);
    await waitFor(async () => (b as unknown as { stageTimer: number }).stageTimer !== 0);
    await driveUntilAsync(clock, async () => ((await log.release(r.id))?.stage ?? 0) >= 2, { maxRealMs: 30_000 });
    // a dies mid-rollout; b widens the last stages and ends the release alone.
    a.close();
    const left = (await log.release(r.id))!;
    expect(left.status === "running" && left.stage < 4).toBe(true);
    await driveUntilAsync(clock, async () => (await log.release(r.id))?.status === "done" && (await log.onlineOn("1.1.0")) === devices.length, { maxRealMs: 30_000, maxVirtualMs: 3 * 86_400_000 });

    const stages = await log.stages(r.id);
    expect(stages.map((s) => [s.idx, s.percent])).toEqual([[0, 10], [1, 30], [2, 50], [3, 80], [4, 100]]);
    // Stage 3 (50 %) is watched a virtual day, so a loaded machine's coarse poll still sees it before a stops.
    expect(stages.slice(1).map((s, i) => s.started - stages[i]!.started)).toEqual([600_000, 600_000, 86_400_000, 600_000]);
    // One announcement per stage, from whichever controller won it: wait (real time, a loaded
    // machine's broker may take a while) for the fifth, then a little longer for any duplicate.
    await waitFor(async () => watch.messages.length >= 5, 20_000);
    await b.settled();
    await new Promise((res) => setTimeout(res, 300));
    const percents = watch.messages.map((m) => verifyManifest(Buffer.from(m.payload), [keyFromConfig(keyConfigOf(key), nodeCrypto)], nodeCrypto).manifest.rollout?.percent);
    expect(percents).toEqual([10, 30, 50, 80, 100]);
    // Both ingested every event; the log holds each once.
    await b.settled();
    const emitted = devices.reduce((n, d) => n + d.outbox.nextSeq - 1, 0);
    expect(devices.every((d) => d.outbox.pending().length === 0)).toBe(true);
    expect(await log.eventCount()).toBe(emitted);
    expect(await log.seqGaps()).toBe(0);
    expect(a.duplicates + b.duplicates).toBeGreaterThan(0);
  });
});
