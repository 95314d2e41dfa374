/*
 * The fleet's audit log in SQLite (better-sqlite3): the default backend, one file, queryable with
 * any sqlite3 client. The schema and the interface are shared with PostgreSQL (audit-store.ts):
 *
 *   events    every AuditEvent a device sent; PRIMARY KEY (device, seq) drops the duplicates that
 *             at-least-once delivery produces (ON CONFLICT DO NOTHING)
 *   devices   what each device runs now (from its retained version/state), group, region,
 *             hardware, online, last result, last seen
 *   releases  one row per rollout (id constant across stages): manifest fields, plan, status
 *   stages    when each stage (percentage) started and ended
 *   samples   devices per version per group over time (the fleet view's chart)
 *   meta      key/value (the controller's API URL, so the CLI can find it)
 *
 * better-sqlite3 is synchronous, so every method answers with its value (AuditStore allows it):
 * code that holds an AuditLog may read it without awaiting.
 */
import Database from "better-sqlite3";
import type { AuditEvent } from "../../modules/events";
import type { DeviceState } from "../../modules/reporter";
import {
  MIGRATIONS, SQL, ingestParams, releaseParams, casParams, groupVersions, deviceOf, eventOf, releaseOf, contentOfParams, contentOfRow, parkParams,
  type AuditStore, type DeviceRow, type EventRow, type Expect, type Ingest, type IngestIssues, type IngestOutcome, type Parked, type ReleaseRow, type Transition,
} from "./audit-store";

export type { ReleaseStatus, ReleaseRow, DeviceRow, EventRow, AuditStore } from "./audit-store";

type Row = Record<string, unknown>;

export class AuditLog implements AuditStore {
  readonly kind = "sqlite" as const;
  readonly db: Database;
  private readonly stmts = new Map<string, ReturnType<Database["prepare"]>>();

  /** Opens (creating) the database file; ":memory:" for a throwaway one. */
  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec("CREATE TABLE IF NOT EXISTS schema_version (n INTEGER NOT NULL)");
    const have = (this.db.prepare("SELECT MAX(n) AS n FROM schema_version").get() as { n: number | null }).n ?? 0;
    this.batch(() => {
      for (let i = have; i < MIGRATIONS.length; i++) {
        this.db.exec(MIGRATIONS[i]!);
        this.db.prepare("INSERT INTO schema_version (n) VALUES (?)").run(i + 1);
      }
    });
  }

  get location(): string {
    return this.path;
  }

  private st(sql: string) {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  ingest(items: Ingest[]): IngestOutcome[] {
    const out: IngestOutcome[] = [];
    this.batch(() => {
      for (const i of items) {
        const { sql, params } = ingestParams(i);
        if (this.st(sql).run(...params).changes === 1 || i.kind !== "event") {
          out.push("new");
          continue;
        }
        const content = contentOfParams(params);
        const had = this.st(SQL.eventContentRow).get(i.device, i.event.seq) as Row | undefined;
        if (had && contentOfRow(had) === content) out.push("duplicate");
        else out.push(this.st(SQL.insertConflict).run(i.device, i.event.seq, content, i.at).changes === 1 ? "conflict" : "duplicate");
      }
    });
    return out;
  }

  /** Store one event; false when (device, seq) was already there (a redelivery, or a conflict kept aside). */
  addEvent(device: string, e: AuditEvent, received: number): boolean {
    return this.ingest([{ kind: "event", device, event: e, at: received }])[0] === "new";
  }

  park(p: Parked, digest: string): boolean {
    return this.st(SQL.park).run(...parkParams(p, digest)).changes === 1;
  }

  ingestIssues(limit = 10): IngestIssues {
    return {
      conflicts: (this.st(SQL.conflictCount).get() as { n: number }).n,
      parked: (this.st(SQL.parkedCount).get() as { n: number }).n,
      recentConflicts: this.st(SQL.recentConflicts).all(limit) as IngestIssues["recentConflicts"],
      recentParked: this.st(SQL.recentParked).all(limit) as IngestIssues["recentParked"],
    };
  }

  setState(device: string, s: DeviceState, seen: number): void {
    this.ingest([{ kind: "state", device, state: s, at: seen }]);
  }

  setVersion(device: string, version: string, seen: number): void {
    this.ingest([{ kind: "version", device, version, at: seen }]);
  }

  setOnline(device: string, online: boolean, seen: number): void {
    this.ingest([{ kind: "online", device, online, at: seen }]);
  }

  /** Many writes in one transaction. */
  batch(fn: () => void): void {
    this.db.transaction(fn)();
  }

  devices(): DeviceRow[] {
    return (this.st("SELECT * FROM devices ORDER BY id").all() as Row[]).map(deviceOf);
  }

  onlineOn(version: string): number {
    return (this.st("SELECT COUNT(*) AS n FROM devices WHERE version = ? AND online = 1").get(version) as { n: number }).n;
  }

  device(id: string): DeviceRow | undefined {
    const r = this.st("SELECT * FROM devices WHERE id = ?").get(id) as Row | undefined;
    return r ? deviceOf(r) : undefined;
  }

  /** Every step a device took, in seq order. */
  history(device: string): EventRow[] {
    return (this.st("SELECT * FROM events WHERE device = ? ORDER BY seq").all(device) as Row[]).map(eventOf);
  }

  eventCount(device?: string): number {
    const r = device === undefined
      ? this.st("SELECT COUNT(*) AS n FROM events").get()
      : this.st("SELECT COUNT(*) AS n FROM events WHERE device = ?").get(device);
    return (r as { n: number }).n;
  }

  eventKeys(): string[] {
    return (this.st("SELECT device, seq FROM events").all() as { device: string; seq: number }[]).map((r) => `${r.device}:${r.seq}`);
  }

  seqGaps(): number {
    return (this.st(SQL.seqGaps).get() as { n: number }).n;
  }

  latestEvents(): { device: string; seq: number; state: string }[] {
    return this.st(SQL.latestEvents).all() as { device: string; seq: number; state: string }[];
  }

  versionsByGroup(): Record<string, Record<string, number>> {
    return groupVersions(this.devices());
  }

  /**
   * Devices that failed this release: a rolled-back or failed event for it (rollout id or target
   * version). Policy refusals are not failures.
   */
  failures(rolloutId: string, version: string): { device: string; state: string; code: string | null }[] {
    return this.st(SQL.failures).all(rolloutId, version, version) as { device: string; state: string; code: string | null }[];
  }

  /** Devices that started on this release (any download/install/commit/failure event for it). */
  attempts(rolloutId: string, version: string): number {
    return (this.st(SQL.attempts).get(rolloutId, version) as { n: number }).n;
  }

  putRelease(r: ReleaseRow): void {
    this.st(SQL.putRelease).run(...releaseParams(r));
  }

  releases(): ReleaseRow[] {
    return (this.st("SELECT * FROM releases ORDER BY created, id").all() as Row[]).map(releaseOf);
  }

  release(id: string): ReleaseRow | undefined {
    const r = this.st("SELECT * FROM releases WHERE id = ?").get(id) as Row | undefined;
    return r ? releaseOf(r) : undefined;
  }

  transition(id: string, expect: Expect, t: Transition): boolean {
    let ok = false;
    this.batch(() => {
      ok = this.st(SQL.casRelease).run(...casParams(id, expect, t.next)).changes === 1;
      if (!ok) return;
      if (t.ended) this.stageEnded(id, t.ended.idx, t.ended.at);
      if (t.started) this.stageStarted(id, t.started.idx, t.started.percent, t.started.at);
    });
    return ok;
  }

  stageStarted(release: string, idx: number, percent: number, at: number): void {
    this.st(SQL.stageStarted).run(release, idx, percent, at);
  }

  stageEnded(release: string, idx: number, at: number): void {
    this.st(SQL.stageEnded).run(at, release, idx);
  }

  stages(release: string): { idx: number; percent: number; started: number; ended: number | null }[] {
    return this.st("SELECT idx, percent, started, ended FROM stages WHERE release = ? ORDER BY started, idx").all(release) as never;
  }

  versionTotals(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.st(SQL.versionTotals).all() as { v: string; n: number }[]) out[r.v] = r.n;
    return out;
  }

  sample(time: number): void {
    const by: Record<string, Record<string, number>> = { ...this.versionsByGroup(), "*": this.versionTotals() };
    this.batch(() => {
      for (const [g, m] of Object.entries(by)) for (const [v, n] of Object.entries(m)) this.st(SQL.insertSample).run(time, g, v, n);
    });
  }

  samples(): { time: number; grp: string; version: string; count: number }[] {
    return this.st("SELECT time, grp, version, count FROM samples ORDER BY time").all() as never;
  }

  setMeta(key: string, value: string): void {
    this.st(SQL.setMeta).run(key, value);
  }

  meta(key: string): string | undefined {
    return (this.st("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined)?.value;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
