/*
 * One interleaving of the fleet controller, made deterministic: the chart sample's follow() reads
 * the release while the stage timer's stageDone() is widening it. The log's stages() is held open
 * at the moments that matter, and virtual time jumps while nothing is due, as driveUntil's does
 * on a loaded machine. A stale follow() must not replace the timer the new stage was given.
 * (test/fleet/controllers-pg.test.ts failed so in a CI dry run: a stage widened 114 virtual
 * minutes late.)
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan, type ReleaseFields } from "../../backend/fleet/controller";
import { generateKey } from "../../backend/release/keys";
import { realWait } from "./helpers";

const key = generateKey("ecdsa-p256");
const release: ReleaseFields = { product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/thermo-1.1.0.bin", size: 65536, sha256: "ab".repeat(32) };

describe("fleet controller: a chart sample during a stage change", () => {
  let broker: Broker | undefined;
  let dir: string | undefined;
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the new stage's timer: the stage after it starts exactly one watch later", async () => {
    broker = await startBroker({ kind: "aedes" });
    dir = mkdtempSync(join(tmpdir(), "xsota-fleet-race-"));
    const clock = new VirtualClock();
    const real = new AuditLog(join(dir, "audit.db"));
    cleanup.push(() => real.close());
    // stages() answers at once, or (held) only when the test lets it
    let hold = false;
    const waiting: (() => void)[] = [];
    const log = new Proxy(real, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === "stages") {
          return (id: string) => hold ? new Promise((resolve) => waiting.push(() => resolve(target.stages(id)))) : target.stages(id);
        }
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const c = await FleetController.start({ broker, log, clock, signingKey: key, fanoutHoldMs: 150, sampleEveryMs: 3_600_000 });
    cleanup.push(() => c.close());
    const r = await c.startRelease(release, parsePlan("10:10m,50:10m,100:10m"), "thermo-1.1.0-race");
    const stage = () => real.release(r.id)!.stage;

    hold = true;
    clock.advance(600_000); // stage 0's watch ends: stageDone starts widening to stage 1
    const sampled = c.sampleNow(); // the stage timer is 0 meanwhile: the sample follows the release as it reads it
    await realWait(() => stage() === 1 && waiting.length > 0);
    const stage1 = real.stages(r.id).find((s) => s.idx === 1)!.started;
    waiting.splice(0).forEach((go) => go()); // the sample's read of stage 0 answers now, stale
    await sampled;
    // Whatever is due now runs; then 20 virtual minutes pass with the log's answers held, as a
    // loaded machine's drive would jump to the next timer.
    clock.advance(0);
    await new Promise((res) => setTimeout(res, 50));
    clock.advance(20 * 60_000);
    hold = false;
    waiting.splice(0).forEach((go) => go());
    // (and what is due then runs, so a timer left for "now" fires too)
    await realWait(() => {
      clock.advance(0);
      return stage() === 2;
    });
    const stage2 = real.stages(r.id).find((s) => s.idx === 2)!.started;
    expect(stage2 - stage1).toBe(600_000);
  });
});
