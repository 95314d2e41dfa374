/*
 * The fleet's audit log: one SQLite file (better-sqlite3), queryable with any sqlite3 client.
 *
 *   events    every AuditEvent a device sent; PRIMARY KEY (device, seq) drops the duplicates that
 *             at-least-once delivery produces (INSERT OR IGNORE)
 *   devices   what each device runs now (from its retained version/state), group, region,
 *             hardware, online, last result, last seen
 *   releases  one row per rollout (id constant across stages): manifest fields, plan, status
 *   stages    when each stage (percentage) started and ended
 *   samples   devices per version per group over time (the fleet view's chart)
 *   meta      key/value (the controller's API URL, so the CLI can find it)
 */
import Database from "better-sqlite3";
import type { AuditEvent } from "../../modules/events";
import type { DeviceState } from "../../modules/reporter";

export type ReleaseStatus = "running" | "halted" | "done";

export interface ReleaseRow {
  id: string;
  product: string;
  channel: string;
  version: string;
  status: ReleaseStatus;
  stage: number;
  plan: { percent: number; watchMs: number }[];
  flagged: boolean;
  reason: string | null;
  created: number;
  updated: number;
  /** The manifest fields the stages are re-signed from (JSON). */
  manifest: Record<string, unknown>;
}

export interface DeviceRow {
  id: string;
  version: string | null;
  slot: number | null;
  secure_version: number | null;
  hardware: string | null;
  region: string | null;
  groups: string[];
  online: boolean;
  last_state: string | null;
  last_code: string | null;
  last_seen: number;
}

export interface EventRow extends AuditEvent {
  device: string;
  received: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  device TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER, uptime INTEGER, state TEXT NOT NULL,
  from_version TEXT, to_version TEXT, progress INTEGER, code TEXT, detail TEXT, rollout TEXT,
  received INTEGER NOT NULL, PRIMARY KEY (device, seq));
CREATE INDEX IF NOT EXISTS events_state ON events(state, to_version);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, version TEXT, slot INTEGER, secure_version INTEGER, hardware TEXT, region TEXT,
  groups TEXT NOT NULL DEFAULT '[]', online INTEGER NOT NULL DEFAULT 0, last_state TEXT, last_code TEXT,
  last_seen INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS releases (
  id TEXT PRIMARY KEY, product TEXT NOT NULL, channel TEXT NOT NULL, version TEXT NOT NULL,
  status TEXT NOT NULL, stage INTEGER NOT NULL, plan TEXT NOT NULL, flagged INTEGER NOT NULL DEFAULT 0,
  reason TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL, manifest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stages (
  release TEXT NOT NULL, idx INTEGER NOT NULL, percent REAL NOT NULL, started INTEGER NOT NULL,
  ended INTEGER, PRIMARY KEY (release, idx, started));
CREATE TABLE IF NOT EXISTS samples (time INTEGER NOT NULL, grp TEXT NOT NULL, version TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

type Row = Record<string, unknown>;

export class AuditLog {
  readonly db: Database;
  private insertEvent;
  private upsertState;
  private upsertVersion;
  private upsertOnline;

  /** Opens (creating) the database file; ":memory:" for a throwaway one. */
  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(SCHEMA);
    this.insertEvent = this.db.prepare(
      `INSERT OR IGNORE INTO events (device, seq, time, uptime, state, from_version, to_version, progress, code, detail, rollout, received)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.upsertState = this.db.prepare(
      `INSERT INTO devices (id, version, slot, secure_version, hardware, region, groups, online, last_state, last_code, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET version = excluded.version, slot = excluded.slot, secure_version = excluded.secure_version,
         hardware = excluded.hardware, region = excluded.region, groups = excluded.groups, last_state = excluded.last_state,
         last_code = excluded.last_code, last_seen = excluded.last_seen`,
    );
    this.upsertVersion = this.db.prepare(
      `INSERT INTO devices (id, version, last_seen) VALUES (?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET version = excluded.version, last_seen = excluded.last_seen`,
    );
    this.upsertOnline = this.db.prepare(
      `INSERT INTO devices (id, online, last_seen) VALUES (?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen`,
    );
  }

  /** Store one event; false when (device, seq) was already there (a redelivery). */
  addEvent(device: string, e: AuditEvent, received: number): boolean {
    const r = this.insertEvent.run(device, e.seq, e.time ?? null, e.uptime ?? null, e.state, e.from ?? null, e.to ?? null,
      e.progress ?? null, e.code ?? null, e.detail ?? null, e.rollout ?? null, received);
    return r.changes === 1;
  }

  setState(device: string, s: DeviceState, seen: number): void {
    this.upsertState.run(device, s.version, s.slot, s.secure_version, s.hardware ?? null, s.region ?? null, JSON.stringify(s.groups ?? []),
      s.last?.state ?? null, s.last?.code ?? null, seen);
  }

  setVersion(device: string, version: string, seen: number): void {
    this.upsertVersion.run(device, version, seen);
  }

  setOnline(device: string, online: boolean, seen: number): void {
    this.upsertOnline.run(device, online ? 1 : 0, seen);
  }

  /** Many writes in one transaction (the controller batches what arrives in one turn). */
  batch(fn: () => void): void {
    this.db.transaction(fn)();
  }

  devices(): DeviceRow[] {
    return (this.db.prepare("SELECT * FROM devices ORDER BY id").all() as Row[]).map(deviceOf);
  }

  /** How many devices are online and report `version` (a COUNT, for polling large fleets). */
  onlineOn(version: string): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM devices WHERE version = ? AND online = 1").get(version) as { n: number }).n;
  }

  device(id: string): DeviceRow | undefined {
    const r = this.db.prepare("SELECT * FROM devices WHERE id = ?").get(id) as Row | undefined;
    return r ? deviceOf(r) : undefined;
  }

  /** Every step a device took, in seq order. */
  history(device: string): EventRow[] {
    return (this.db.prepare("SELECT * FROM events WHERE device = ? ORDER BY seq").all(device) as Row[]).map(eventOf);
  }

  eventCount(device?: string): number {
    const r = device === undefined
      ? this.db.prepare("SELECT COUNT(*) AS n FROM events").get()
      : this.db.prepare("SELECT COUNT(*) AS n FROM events WHERE device = ?").get(device);
    return (r as { n: number }).n;
  }

  /** Seqs missing between each device's first and last logged event, summed over devices. */
  seqGaps(): number {
    const r = this.db.prepare("SELECT COALESCE(SUM(g), 0) AS n FROM (SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) AS g FROM events GROUP BY device)").get();
    return (r as { n: number }).n;
  }

  /** group -> version -> devices. A device counts in each of its groups; none: "(none)". */
  versionsByGroup(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const d of this.devices()) {
      const v = d.version ?? "unknown";
      for (const g of d.groups.length ? d.groups : ["(none)"]) {
        const m = (out[g] ??= {});
        m[v] = (m[v] ?? 0) + 1;
      }
    }
    return out;
  }

  /**
   * Devices that failed this release: a rolled-back or failed event for it (rollout id or target
   * version). Policy refusals are not failures.
   */
  failures(rolloutId: string, version: string): { device: string; state: string; code: string | null }[] {
    return this.db.prepare(
      `SELECT device, state, code FROM events WHERE state IN ('rolled-back', 'failed')
         AND (rollout = ? OR to_version = ? OR (state = 'rolled-back' AND from_version = ?))
       GROUP BY device`,
    ).all(rolloutId, version, version) as { device: string; state: string; code: string | null }[];
  }

  /** Devices that started on this release (any download/install/commit/failure event for it). */
  attempts(rolloutId: string, version: string): number {
    const r = this.db.prepare(
      `SELECT COUNT(DISTINCT device) AS n FROM events WHERE state IN ('downloading', 'verifying', 'installing', 'rebooting', 'confirming', 'committed', 'rolled-back', 'failed')
         AND (rollout = ? OR to_version = ?)`,
    ).get(rolloutId, version) as { n: number };
    return r.n;
  }

  putRelease(r: ReleaseRow): void {
    this.db.prepare(
      `INSERT INTO releases (id, product, channel, version, status, stage, plan, flagged, reason, created, updated, manifest)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET status = excluded.status, stage = excluded.stage, flagged = excluded.flagged,
         reason = excluded.reason, updated = excluded.updated`,
    ).run(r.id, r.product, r.channel, r.version, r.status, r.stage, JSON.stringify(r.plan), r.flagged ? 1 : 0, r.reason, r.created, r.updated, JSON.stringify(r.manifest));
  }

  releases(): ReleaseRow[] {
    return (this.db.prepare("SELECT * FROM releases ORDER BY created").all() as Row[]).map(releaseOf);
  }

  release(id: string): ReleaseRow | undefined {
    const r = this.db.prepare("SELECT * FROM releases WHERE id = ?").get(id) as Row | undefined;
    return r ? releaseOf(r) : undefined;
  }

  stageStarted(release: string, idx: number, percent: number, at: number): void {
    this.db.prepare("INSERT OR REPLACE INTO stages (release, idx, percent, started) VALUES (?, ?, ?, ?)").run(release, idx, percent, at);
  }

  stageEnded(release: string, idx: number, at: number): void {
    this.db.prepare("UPDATE stages SET ended = ? WHERE release = ? AND idx = ? AND ended IS NULL").run(at, release, idx);
  }

  stages(release: string): { idx: number; percent: number; started: number; ended: number | null }[] {
    return this.db.prepare("SELECT idx, percent, started, ended FROM stages WHERE release = ? ORDER BY started").all(release) as never;
  }

  /** version -> devices, over the whole fleet. */
  versionTotals(): Record<string, number> {
    const rows = this.db.prepare("SELECT COALESCE(version, 'unknown') AS v, COUNT(*) AS n FROM devices GROUP BY v ORDER BY v").all() as { v: string; n: number }[];
    const out: Record<string, number> = {};
    for (const r of rows) out[r.v] = r.n;
    return out;
  }

  /** Record the current versions per group at `time` (for the chart); group "*" is the whole fleet. */
  sample(time: number): void {
    const by: Record<string, Record<string, number>> = { ...this.versionsByGroup(), "*": this.versionTotals() };
    const ins = this.db.prepare("INSERT INTO samples (time, grp, version, count) VALUES (?, ?, ?, ?)");
    this.batch(() => {
      for (const [g, m] of Object.entries(by)) for (const [v, n] of Object.entries(m)) ins.run(time, g, v, n);
    });
  }

  samples(): { time: number; grp: string; version: string; count: number }[] {
    return this.db.prepare("SELECT time, grp, version, count FROM samples ORDER BY time").all() as never;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  meta(key: string): string | undefined {
    const r = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return r?.value;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function deviceOf(r: Row): DeviceRow {
  return {
    id: r.id as string,
    version: (r.version as string) ?? null,
    slot: (r.slot as number) ?? null,
    secure_version: (r.secure_version as number) ?? null,
    hardware: (r.hardware as string) ?? null,
    region: (r.region as string) ?? null,
    groups: JSON.parse((r.groups as string) || "[]") as string[],
    online: r.online === 1,
    last_state: (r.last_state as string) ?? null,
    last_code: (r.last_code as string) ?? null,
    last_seen: r.last_seen as number,
  };
}

function eventOf(r: Row): EventRow {
  const e: EventRow = { device: r.device as string, seq: r.seq as number, time: r.time as number, uptime: r.uptime as number, state: r.state as AuditEvent["state"], from: r.from_version as string, received: r.received as number };
  if (r.to_version != null) e.to = r.to_version as string;
  if (r.progress != null) e.progress = r.progress as number;
  if (r.code != null) e.code = r.code as AuditEvent["code"] & string;
  if (r.detail != null) e.detail = r.detail as string;
  if (r.rollout != null) e.rollout = r.rollout as string;
  return e;
}

function releaseOf(r: Row): ReleaseRow {
  return {
    id: r.id as string,
    product: r.product as string,
    channel: r.channel as string,
    version: r.version as string,
    status: r.status as ReleaseStatus,
    stage: r.stage as number,
    plan: JSON.parse(r.plan as string),
    flagged: r.flagged === 1,
    reason: (r.reason as string) ?? null,
    created: r.created as number,
    updated: r.updated as number,
    manifest: JSON.parse(r.manifest as string),
  };
}
