/*
 * One suite, both backends: the SQLite file and a real PostgreSQL server answer the same calls
 * with the same rows (skipped with the reason when PostgreSQL is not installed).
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIGRATIONS, type AuditStore, type ReleaseRow } from "../../backend/fleet/audit-store";
import { openAuditStore } from "../../backend/fleet/open-audit";
import type { AuditEvent } from "../../modules/events";
import { ControlTracker } from "../../backend/fleet/control";
import { fleetStatus } from "../../backend/fleet/web";
import { noPostgres, usePg } from "./pg";

const pg = usePg();
const ev = (seq: number, state: AuditEvent["state"], extra: Partial<AuditEvent> = {}): AuditEvent => ({ seq, time: 1000 + seq, uptime: seq, state, from: "1.0.0", ...extra });
const release = (over: Partial<ReleaseRow> = {}): ReleaseRow => ({
  id: "thermo-1.1.0-r", product: "thermo", channel: "stable", version: "1.1.0", status: "running", stage: 0,
  plan: [{ percent: 10, watchMs: 600_000 }, { percent: 100, watchMs: 0 }], flagged: false, reason: null, created: 1, updated: 1,
  manifest: { product: "thermo", version: "1.1.0" }, ...over,
});

describe.each(["sqlite", "postgres"] as const)("audit store (%s)", (kind) => {
  const open: AuditStore[] = [];
  let dir = "";
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = "";
  });
  const skip = kind === "postgres" && noPostgres !== undefined;
  /** A fresh database, and a function opening another handle (another process's view) on it. */
  async function fresh(): Promise<{ log: AuditStore; again: () => Promise<AuditStore> }> {
    let spec: string;
    if (kind === "sqlite") spec = join((dir = mkdtempSync(join(tmpdir(), "xsota-store-"))), "audit.db");
    else spec = await pg.fresh();
    const again = async () => {
      const s = await openAuditStore(spec);
      open.push(s);
      return s;
    };
    return { log: await again(), again };
  }

  it.skipIf(skip)("a restarted controller (a new handle) sees which devices are paused, awaiting install or reboot: each device's newest event decides", async () => {
    const { log, again } = await fresh();
    await log.ingest([
      { kind: "event", device: "p1", event: ev(1, "downloading"), at: 1 },
      { kind: "event", device: "p1", event: ev(3, "paused"), at: 2 },
      { kind: "event", device: "p1", event: ev(2, "downloading"), at: 3 }, // late, older: does not undo the pause
      { kind: "event", device: "i1", event: ev(7, "awaiting-install"), at: 4 },
      { kind: "event", device: "r1", event: ev(4, "awaiting-reboot"), at: 5 },
      { kind: "event", device: "r2", event: ev(1, "awaiting-reboot"), at: 6 },
      { kind: "event", device: "r2", event: ev(2, "rebooting"), at: 7 }, // no longer waiting
    ]);
    const other = await again();
    expect(await other.latestEvents()).toEqual([
      { device: "i1", seq: 7, state: "awaiting-install" }, { device: "p1", seq: 3, state: "paused" },
      { device: "r1", seq: 4, state: "awaiting-reboot" }, { device: "r2", seq: 2, state: "rebooting" },
    ]);
    expect((await new ControlTracker().load(other)).snapshot()).toEqual({ paused: ["p1"], awaitingInstall: ["i1"], awaitingReboot: ["r1"] });
    expect((await fleetStatus({ log: other, current: () => undefined })).control).toEqual({ paused: ["p1"], awaitingInstall: ["i1"], awaitingReboot: ["r1"] });
  });

  it.skipIf(skip)("drops redelivered events by (device, seq), within a batch and across batches and handles", async () => {
    const { log, again } = await fresh();
    expect(log.kind).toBe(kind);
    const first = await log.ingest([
      { kind: "event", device: "d1", event: ev(1, "downloading", { to: "1.1.0" }), at: 10 },
      { kind: "event", device: "d1", event: ev(2, "committed", { to: "1.1.0" }), at: 11 },
      { kind: "event", device: "d1", event: ev(1, "downloading", { to: "1.1.0" }), at: 12 }, // the outbox resent it
      { kind: "event", device: "d2", event: ev(1, "failed", { to: "1.1.0", code: "DOWNLOAD_HASH" }), at: 13 },
    ]);
    expect(first).toEqual(["new", "new", "duplicate", "new"]);
    const other = await again(); // a second controller's connection
    expect(await other.ingest([{ kind: "event", device: "d1", event: ev(2, "committed", { to: "1.1.0" }), at: 20 }, { kind: "event", device: "d1", event: ev(4, "idle"), at: 21 }])).toEqual(["duplicate", "new"]);
    expect(await log.eventCount()).toBe(4);
    expect(await log.eventCount("d1")).toBe(3);
    expect(await log.seqGaps()).toBe(1); // d1 has 1, 2, 4
    expect((await log.eventKeys()).sort()).toEqual(["d1:1", "d1:2", "d1:4", "d2:1"]);
    const h = await log.history("d1");
    expect(h.map((e) => [e.seq, e.state, e.received])).toEqual([[1, "downloading", 10], [2, "committed", 11], [4, "idle", 21]]);
    expect(h[0]).toMatchObject({ device: "d1", time: 1001, uptime: 1, from: "1.0.0", to: "1.1.0" });
    expect(await log.failures("thermo-1.1.0-r", "1.1.0")).toEqual([{ device: "d2", state: "failed", code: "DOWNLOAD_HASH" }]);
    expect(await log.attempts("thermo-1.1.0-r", "1.1.0")).toBe(2);
  });

  it.skipIf(skip)("the same (device, seq) with other content is a conflict kept aside, not a duplicate; parked messages are kept once", async () => {
    const { log, again } = await fresh();
    // a forged seq 1 arrives first; the device's real seq 1 after it
    expect(await log.ingest([{ kind: "event", device: "d1", event: ev(1, "committed", { to: "9.9.9" }), at: 10 }])).toEqual(["new"]);
    const real = ev(1, "rolled-back", { to: "1.1.0", code: "POLICY_ROLLBACK_CAP" });
    expect(await log.ingest([{ kind: "event", device: "d1", event: real, at: 11 }, { kind: "event", device: "d1", event: real, at: 12 }])).toEqual(["conflict", "duplicate"]);
    const other = await again();
    expect(await other.ingest([{ kind: "event", device: "d1", event: real, at: 13 }])).toEqual(["duplicate"]); // its redelivery
    expect(await other.ingest([{ kind: "event", device: "d1", event: ev(1, "committed", { to: "9.9.9" }), at: 14 }])).toEqual(["duplicate"]);
    const issues = await other.ingestIssues();
    expect(issues.conflicts).toBe(1);
    expect(issues.recentConflicts).toHaveLength(1);
    expect(issues.recentConflicts[0]).toMatchObject({ device: "d1", seq: 1, received: 11 });
    expect(issues.recentConflicts[0]!.content).toContain("POLICY_ROLLBACK_CAP");
    expect(await log.eventCount()).toBe(1);
    const parked = { device: "d2", topic: "devices/d2/state", payload: "null", reason: "state: expected a JSON object", at: 20 };
    expect(await log.park(parked, "ab")).toBe(true);
    expect(await other.park({ ...parked, at: 21 }, "ab")).toBe(false); // the retained copy again after a reconnect
    expect(await log.ingestIssues()).toMatchObject({ parked: 1, recentParked: [{ device: "d2", topic: "devices/d2/state", payload: "null", reason: "state: expected a JSON object", received: 20 }] });
  });

  it.skipIf(skip)("applies device reports in arrival order; versions per group; samples, meta", async () => {
    const { log } = await fresh();
    const state = { version: "1.0.0", slot: 0, secure_version: 1, project: "thermo", hardware: "esp32-rev3", region: "eu", groups: ["lab", "beta"], last: null, online: true as const };
    await log.ingest([
      { kind: "online", device: "d1", online: true, at: 1 },
      { kind: "state", device: "d1", state, at: 2 },
      { kind: "version", device: "d1", version: "1.1.0", at: 3 }, // newer than the state's
      { kind: "online", device: "d1", online: false, at: 4 },
      { kind: "version", device: "d2", version: "1.0.0", at: 5 },
    ]);
    await log.ingest([{ kind: "online", device: "d2", online: true, at: 6 }]);
    expect(await log.device("d1")).toEqual({ id: "d1", version: "1.1.0", slot: 0, secure_version: 1, hardware: "esp32-rev3", region: "eu", groups: ["lab", "beta"], online: false, last_state: null, last_code: null, last_seen: 4 });
    expect((await log.devices()).map((d) => d.id)).toEqual(["d1", "d2"]);
    expect(await log.onlineOn("1.0.0")).toBe(1);
    expect(await log.versionTotals()).toEqual({ "1.0.0": 1, "1.1.0": 1 });
    expect(await log.versionsByGroup()).toEqual({ lab: { "1.1.0": 1 }, beta: { "1.1.0": 1 }, "(none)": { "1.0.0": 1 } });
    await log.sample(100);
    expect((await log.samples()).filter((s) => s.grp === "*")).toEqual([{ time: 100, grp: "*", version: "1.0.0", count: 1 }, { time: 100, grp: "*", version: "1.1.0", count: 1 }]);
    await log.setMeta("api", "http://127.0.0.1:1/");
    await log.setMeta("api", "http://127.0.0.1:2/");
    expect(await log.meta("api")).toBe("http://127.0.0.1:2/");
    expect(await log.meta("nope")).toBeUndefined();
  });

  it.skipIf(skip)("migrates once; a release changes stage only from the state it was read in (two handles racing)", async () => {
    const { log, again } = await fresh();
    const other = await again(); // opening again re-runs no migration
    await log.putRelease(release());
    await log.stageStarted("thermo-1.1.0-r", 0, 10, 1);
    expect(await other.release("thermo-1.1.0-r")).toEqual(release());
    const widen = (s: AuditStore, at: number) => s.transition("thermo-1.1.0-r", { status: "running", stage: 0 }, {
      next: release({ stage: 1, updated: at }), ended: { idx: 0, at }, started: { idx: 1, percent: 100, at },
    });
    const results = await Promise.all([widen(log, 50), widen(other, 51), widen(log, 52), widen(other, 53)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const at = 50 + results.indexOf(true);
    expect(await log.stages("thermo-1.1.0-r")).toEqual([{ idx: 0, percent: 10, started: 1, ended: at }, { idx: 1, percent: 100, started: at, ended: null }]);
    expect(await log.release("thermo-1.1.0-r")).toMatchObject({ stage: 1, updated: at, status: "running" });
    // A halt read at stage 0 is refused too; one read at stage 1 applies.
    expect(await other.transition("thermo-1.1.0-r", { status: "running", stage: 0 }, { next: release({ status: "halted", reason: "x" }) })).toBe(false);
    expect(await other.transition("thermo-1.1.0-r", { status: "running", stage: 1 }, { next: release({ stage: 1, status: "halted", flagged: true, reason: "3 of 4 failed", updated: 60 }), ended: { idx: 1, at: 60 } })).toBe(true);
    expect(await log.release("thermo-1.1.0-r")).toMatchObject({ status: "halted", flagged: true, reason: "3 of 4 failed" });
    expect((await log.releases()).length).toBe(1);
    expect(MIGRATIONS.length).toBeGreaterThan(0);
  });
});
