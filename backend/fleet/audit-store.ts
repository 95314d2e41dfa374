/*
 * The audit log's one interface and its one schema, for both backends: SQLite (audit-log.ts,
 * better-sqlite3, synchronous: the default, one file) and PostgreSQL (audit-pg.ts, `pg`,
 * asynchronous: several controllers on one database).
 *
 * Every method returns `Awaitable<T>`: SQLite answers with the value itself, PostgreSQL with a
 * promise, and a caller that must work with both (the controller, the fleet view, the CLI)
 * awaits. Code that opened a SQLite `AuditLog` itself (the demo, the tests) may keep reading it
 * synchronously.
 *
 * MIGRATIONS is the schema, in order, once for both: the SQL is the common subset (BIGINT and
 * DOUBLE PRECISION are INTEGER and REAL affinity in SQLite; ON CONFLICT ... DO NOTHING/UPDATE is
 * in both). Each backend records how many it applied in `schema_version` and applies the rest.
 */
import type { AuditEvent } from "../../modules/events";
import type { DeviceState } from "../../modules/reporter";

export type Awaitable<T> = T | Promise<T>;

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

/** One message from a device, as the controller ingests it. */
export type Ingest =
  | { kind: "event"; device: string; event: AuditEvent; at: number }
  | { kind: "state"; device: string; state: DeviceState; at: number }
  | { kind: "version"; device: string; version: string; at: number }
  | { kind: "online"; device: string; online: boolean; at: number };

/**
 * What ingesting an item did. An event: "new"; "duplicate" when its (device, seq) was logged with
 * the same content (a redelivery, dropped); "conflict" when it was logged with other content: the
 * first one stays in events, this one is kept in event_conflicts (a forged seq can no longer make
 * the real event vanish as a "duplicate"). Device reports (state, version, online): "new".
 */
export type IngestOutcome = "new" | "duplicate" | "conflict";

/** A device message the controller could not use (malformed, or refused by the log), kept for the operator instead of retried. */
export interface Parked {
  device: string;
  topic: string;
  payload: string;
  reason: string;
  at: number;
}

/** The ingest problems `fleet status` shows: counts and the newest few of each. */
export interface IngestIssues {
  conflicts: number;
  parked: number;
  recentConflicts: { device: string; seq: number; content: string; received: number }[];
  recentParked: (Omit<Parked, "at"> & { received: number })[];
}

/** The content of an event (every field but device, seq and when it arrived), comparable across backends. */
export function eventContent(values: readonly unknown[]): string {
  return JSON.stringify(values.map((v) => (v === undefined || v === null ? null : typeof v === "bigint" ? Number(v) : v)));
}
/** eventContent of SQL.insertEvent's parameters (ingestParams). */
export const contentOfParams = (params: readonly unknown[]): string => eventContent(params.slice(2, 11));
/** eventContent of a row of SQL.eventContentRow. */
export const contentOfRow = (r: Record<string, unknown>): string =>
  eventContent([r.time, r.uptime, r.state, r.from_version, r.to_version, r.progress, r.code, r.detail, r.rollout]);

/** At most this much of a parked payload is kept (the digest keys the whole). */
export const PARKED_PAYLOAD_CHARS = 512;

/** What a release row must still be for a transition to apply (compare-and-set). */
export interface Expect {
  status: ReleaseStatus;
  stage: number;
}

/** A release's change of stage or status, with the stage rows it starts or ends. */
export interface Transition {
  next: ReleaseRow;
  /** End the stage `idx` (the one being left) at `at`. */
  ended?: { idx: number; at: number };
  /** Start stage `idx` at `at`. */
  started?: { idx: number; percent: number; at: number };
}

export interface AuditStore {
  readonly kind: "sqlite" | "postgres";
  /** The file path or the postgres:// URL (password removed). */
  readonly location: string;

  /**
   * Store what arrived, in order, in one transaction. Returns, per item, what it did
   * (IngestOutcome): an event whose (device, seq) was already there is a duplicate when its
   * content is the same, else a conflict kept beside it.
   */
  ingest(items: Ingest[]): Awaitable<IngestOutcome[]>;
  /** Keep a message the controller will not retry (once per topic and payload). True when it was not there yet. */
  park(p: Parked, digest: string): Awaitable<boolean>;
  /** Conflicts and parked messages: counts and the newest `limit` of each. */
  ingestIssues(limit?: number): Awaitable<IngestIssues>;
  devices(): Awaitable<DeviceRow[]>;
  device(id: string): Awaitable<DeviceRow | undefined>;
  /** How many devices are online and report `version` (a COUNT, for polling large fleets). */
  onlineOn(version: string): Awaitable<number>;
  history(device: string): Awaitable<EventRow[]>;
  eventCount(device?: string): Awaitable<number>;
  /** "device:seq" of every logged event. */
  eventKeys(): Awaitable<string[]>;
  /** Seqs missing between each device's first and last logged event, summed over devices. */
  seqGaps(): Awaitable<number>;
  /** Each device's newest logged event (highest seq): what it is doing now, e.g. awaiting-install. */
  latestEvents(): Awaitable<{ device: string; seq: number; state: string }[]>;
  versionsByGroup(): Awaitable<Record<string, Record<string, number>>>;
  versionTotals(): Awaitable<Record<string, number>>;
  failures(rolloutId: string, version: string): Awaitable<{ device: string; state: string; code: string | null }[]>;
  attempts(rolloutId: string, version: string): Awaitable<number>;

  putRelease(r: ReleaseRow): Awaitable<void>;
  releases(): Awaitable<ReleaseRow[]>;
  release(id: string): Awaitable<ReleaseRow | undefined>;
  /**
   * Apply `t` only if the release is still `expect` (status and stage), atomically with its
   * stage rows: of two controllers racing to widen or halt the same release, exactly one gets
   * true. PostgreSQL holds an advisory lock on the release for the transaction.
   */
  transition(id: string, expect: Expect, t: Transition): Awaitable<boolean>;
  stageStarted(release: string, idx: number, percent: number, at: number): Awaitable<void>;
  stageEnded(release: string, idx: number, at: number): Awaitable<void>;
  stages(release: string): Awaitable<{ idx: number; percent: number; started: number; ended: number | null }[]>;
  /** Record the current versions per group at `time` (for the chart); group "*" is the whole fleet. */
  sample(time: number): Awaitable<void>;
  samples(): Awaitable<{ time: number; grp: string; version: string; count: number }[]>;
  setMeta(key: string, value: string): Awaitable<void>;
  meta(key: string): Awaitable<string | undefined>;
  close(): Awaitable<void>;
}

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT, uptime BIGINT, state TEXT NOT NULL,
    from_version TEXT, to_version TEXT, progress INTEGER, code TEXT, detail TEXT, rollout TEXT,
    received BIGINT NOT NULL, PRIMARY KEY (device, seq));
  CREATE INDEX IF NOT EXISTS events_state ON events(state, to_version);
  CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, version TEXT, slot INTEGER, secure_version INTEGER, hardware TEXT, region TEXT,
    groups TEXT NOT NULL DEFAULT '[]', online INTEGER NOT NULL DEFAULT 0, last_state TEXT, last_code TEXT,
    last_seen BIGINT NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY, product TEXT NOT NULL, channel TEXT NOT NULL, version TEXT NOT NULL,
    status TEXT NOT NULL, stage INTEGER NOT NULL, plan TEXT NOT NULL, flagged INTEGER NOT NULL DEFAULT 0,
    reason TEXT, created BIGINT NOT NULL, updated BIGINT NOT NULL, manifest TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS stages (
    release TEXT NOT NULL, idx INTEGER NOT NULL, percent DOUBLE PRECISION NOT NULL, started BIGINT NOT NULL,
    ended BIGINT, PRIMARY KEY (release, idx, started));
  CREATE TABLE IF NOT EXISTS samples (time BIGINT NOT NULL, grp TEXT NOT NULL, version TEXT NOT NULL, count INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `CREATE TABLE IF NOT EXISTS event_conflicts (device TEXT NOT NULL, seq BIGINT NOT NULL, content TEXT NOT NULL,
    received BIGINT NOT NULL, PRIMARY KEY (device, seq, content));
  CREATE TABLE IF NOT EXISTS parked (topic TEXT NOT NULL, digest TEXT NOT NULL, device TEXT NOT NULL, payload TEXT NOT NULL,
    reason TEXT NOT NULL, received BIGINT NOT NULL, PRIMARY KEY (topic, digest));`,
];

/** The statements both backends run, with `?` placeholders (audit-pg.ts numbers them). */
export const SQL = {
  insertEvent: `INSERT INTO events (device, seq, time, uptime, state, from_version, to_version, progress, code, detail, rollout, received)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING`,
  upsertState: `INSERT INTO devices (id, version, slot, secure_version, hardware, region, groups, online, last_state, last_code, last_seen)
    VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version, slot = excluded.slot, secure_version = excluded.secure_version,
      hardware = excluded.hardware, region = excluded.region, groups = excluded.groups, last_state = excluded.last_state,
      last_code = excluded.last_code, last_seen = excluded.last_seen`,
  upsertVersion: `INSERT INTO devices (id, version, last_seen) VALUES (?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version, last_seen = excluded.last_seen`,
  upsertOnline: `INSERT INTO devices (id, online, last_seen) VALUES (?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen`,
  putRelease: `INSERT INTO releases (id, product, channel, version, status, stage, plan, flagged, reason, created, updated, manifest)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, stage = excluded.stage, flagged = excluded.flagged,
      reason = excluded.reason, updated = excluded.updated`,
  casRelease: `UPDATE releases SET status = ?, stage = ?, flagged = ?, reason = ?, updated = ? WHERE id = ? AND status = ? AND stage = ?`,
  stageStarted: `INSERT INTO stages (release, idx, percent, started) VALUES (?, ?, ?, ?)
    ON CONFLICT (release, idx, started) DO UPDATE SET percent = excluded.percent, ended = NULL`,
  stageEnded: "UPDATE stages SET ended = ? WHERE release = ? AND idx = ? AND ended IS NULL",
  failures: `SELECT device, MIN(state) AS state, MIN(code) AS code FROM events WHERE state IN ('rolled-back', 'failed')
      AND (rollout = ? OR to_version = ? OR (state = 'rolled-back' AND from_version = ?))
    GROUP BY device ORDER BY device`,
  attempts: `SELECT COUNT(DISTINCT device) AS n FROM events WHERE state IN ('downloading', 'verifying', 'installing', 'rebooting', 'confirming', 'committed', 'rolled-back', 'failed')
      AND (rollout = ? OR to_version = ?)`,
  latestEvents: `SELECT e.device, e.seq, e.state FROM events e
    JOIN (SELECT device, MAX(seq) AS seq FROM events GROUP BY device) m ON e.device = m.device AND e.seq = m.seq ORDER BY e.device`,
  seqGaps: "SELECT COALESCE(SUM(g), 0) AS n FROM (SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) AS g FROM events GROUP BY device) AS per_device",
  versionTotals: "SELECT COALESCE(version, 'unknown') AS v, COUNT(*) AS n FROM devices GROUP BY COALESCE(version, 'unknown') ORDER BY 1",
  insertSample: "INSERT INTO samples (time, grp, version, count) VALUES (?, ?, ?, ?)",
  eventContentRow: "SELECT time, uptime, state, from_version, to_version, progress, code, detail, rollout FROM events WHERE device = ? AND seq = ?",
  insertConflict: "INSERT INTO event_conflicts (device, seq, content, received) VALUES (?, ?, ?, ?) ON CONFLICT (device, seq, content) DO NOTHING",
  park: "INSERT INTO parked (topic, digest, device, payload, reason, received) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (topic, digest) DO NOTHING",
  conflictCount: "SELECT COUNT(*) AS n FROM event_conflicts",
  parkedCount: "SELECT COUNT(*) AS n FROM parked",
  recentConflicts: "SELECT device, seq, content, received FROM event_conflicts ORDER BY received DESC, device, seq LIMIT ?",
  recentParked: "SELECT device, topic, payload, reason, received FROM parked ORDER BY received DESC, topic LIMIT ?",
  setMeta: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
} as const;

type Row = Record<string, unknown>;

/** The parameters of SQL.insertEvent etc. for one ingested item. */
export function ingestParams(i: Ingest): { sql: string; params: unknown[] } {
  switch (i.kind) {
    case "event": {
      const e = i.event;
      return { sql: SQL.insertEvent, params: [i.device, e.seq, e.time ?? null, e.uptime ?? null, e.state, e.from ?? null, e.to ?? null,
        e.progress ?? null, e.code ?? null, e.detail ?? null, e.rollout ?? null, i.at] };
    }
    case "state": {
      const s = i.state;
      return { sql: SQL.upsertState, params: [i.device, s.version, s.slot, s.secure_version, s.hardware ?? null, s.region ?? null,
        JSON.stringify(s.groups ?? []), s.last?.state ?? null, s.last?.code ?? null, i.at] };
    }
    case "version":
      return { sql: SQL.upsertVersion, params: [i.device, i.version, i.at] };
    case "online":
      return { sql: SQL.upsertOnline, params: [i.device, i.online ? 1 : 0, i.at] };
  }
}

export function parkParams(p: Parked, digest: string): unknown[] {
  return [p.topic, digest, p.device, p.payload.slice(0, PARKED_PAYLOAD_CHARS), p.reason, p.at];
}

export function releaseParams(r: ReleaseRow): unknown[] {
  return [r.id, r.product, r.channel, r.version, r.status, r.stage, JSON.stringify(r.plan), r.flagged ? 1 : 0, r.reason, r.created, r.updated, JSON.stringify(r.manifest)];
}

export function casParams(id: string, expect: Expect, r: ReleaseRow): unknown[] {
  return [r.status, r.stage, r.flagged ? 1 : 0, r.reason, r.updated, id, expect.status, expect.stage];
}

/** group -> version -> devices. A device counts in each of its groups; none: "(none)". */
export function groupVersions(devices: DeviceRow[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const d of devices) {
    const v = d.version ?? "unknown";
    for (const g of d.groups.length ? d.groups : ["(none)"]) {
      const m = (out[g] ??= {});
      m[v] = (m[v] ?? 0) + 1;
    }
  }
  return out;
}

export function deviceOf(r: Row): DeviceRow {
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

export function eventOf(r: Row): EventRow {
  const e: EventRow = { device: r.device as string, seq: r.seq as number, time: r.time as number, uptime: r.uptime as number, state: r.state as AuditEvent["state"], from: r.from_version as string, received: r.received as number };
  if (r.to_version != null) e.to = r.to_version as string;
  if (r.progress != null) e.progress = r.progress as number;
  if (r.code != null) e.code = r.code as AuditEvent["code"] & string;
  if (r.detail != null) e.detail = r.detail as string;
  if (r.rollout != null) e.rollout = r.rollout as string;
  return e;
}

export function releaseOf(r: Row): ReleaseRow {
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
