/*
 * The audit log in PostgreSQL (`pg`): the same schema (MIGRATIONS) and the same statements
 * (SQL) as SQLite, for fleets whose controllers run on more than one machine.
 *
 * - Migrations run under an advisory lock, so two controllers starting at once do not race.
 * - ingest() writes one turn's messages in one transaction and few statements: events as
 *   multi-row INSERT ... ON CONFLICT (device, seq) DO NOTHING RETURNING device, seq (an event not
 *   returned was already there: a redelivery, dropped as SQLite drops it); device rows merged
 *   per device in arrival order, then upserted per set of columns.
 * - transition() is the compare-and-set that keeps two controllers from both widening or both
 *   halting a release: under pg_advisory_xact_lock on the release id, UPDATE ... WHERE status
 *   and stage are still the expected ones, and the stage rows, in one transaction.
 * - BIGINT, COUNT and SUM come back as JS numbers (ms timestamps and counts stay far below 2^53).
 */
import pg from "pg";
import { OtaError } from "../../modules/errors";
import {
  MIGRATIONS, SQL, ingestParams, releaseParams, casParams, groupVersions, deviceOf, eventOf, releaseOf, contentOfParams, contentOfRow, parkParams,
  type AuditStore, type DeviceRow, type EventRow, type Expect, type Ingest, type IngestIssues, type IngestOutcome, type Parked, type ReleaseRow, type Transition,
} from "./audit-store";

type Row = Record<string, unknown>;

const INT8 = 20;
const NUMERIC = 1700;
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

/** `?` placeholders -> `$1, $2, ...` (our statements have no `?` inside literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

const MIGRATION_LOCK = 0x78736f74; // "xsot"
const ROWS_PER_STATEMENT = 1000;

/** Device columns each ingested kind sets (state also sets online = 1). */
const DEVICE_COLUMNS = {
  state: ["version", "slot", "secure_version", "hardware", "region", "groups", "online", "last_state", "last_code", "last_seen"],
  version: ["version", "last_seen"],
  online: ["online", "last_seen"],
} as const;

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//.test(s);
}

export class PgAuditLog implements AuditStore {
  readonly kind = "postgres" as const;
  readonly location: string;
  private closed = false;

  private constructor(private readonly pool: pg.Pool, url: string) {
    const u = new URL(url);
    u.password = "";
    this.location = u.toString();
  }

  /** Connect and migrate. Throws DB_CONNECT with the server's reason. */
  static async open(url: string, options: { max?: number } = {}): Promise<PgAuditLog> {
    const pool = new pg.Pool({ connectionString: url, max: options.max ?? 4, types });
    pool.on("error", () => {}); // an idle client's broken connection: the next query reports it
    const log = new PgAuditLog(pool, url);
    try {
      await log.tx(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
        await c.query("CREATE TABLE IF NOT EXISTS schema_version (n INTEGER NOT NULL)");
        const have = Number((await c.query("SELECT MAX(n) AS n FROM schema_version")).rows[0]?.n ?? 0);
        for (let i = have; i < MIGRATIONS.length; i++) {
          await c.query(MIGRATIONS[i]!);
          await c.query("INSERT INTO schema_version (n) VALUES ($1)", [i + 1]);
        }
      });
    } catch (e) {
      await pool.end().catch(() => {});
      throw new OtaError("DB_CONNECT", `${log.location}: ${(e as Error).message}`);
    }
    return log;
  }

  private async q<T = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(numbered(sql), params)).rows as T[];
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const out = await fn(c);
      await c.query("COMMIT");
      return out;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async ingest(items: Ingest[]): Promise<IngestOutcome[]> {
    if (!items.length) return [];
    const out = items.map((): IngestOutcome => "new");
    const events: { i: number; params: unknown[] }[] = [];
    const patches = new Map<string, Map<string, unknown>>();
    items.forEach((item, i) => {
      const { params } = ingestParams(item);
      if (item.kind === "event") {
        events.push({ i, params });
        return;
      }
      const p = patches.get(item.device) ?? new Map<string, unknown>();
      patches.set(item.device, p);
      // params: [id, ...columns in DEVICE_COLUMNS order]; state's online is the literal 1.
      const values = item.kind === "state" ? [...params.slice(1, 7), 1, ...params.slice(7)] : params.slice(1);
      DEVICE_COLUMNS[item.kind].forEach((col, k) => p.set(col, values[k]));
    });
    await this.tx(async (c) => {
      const seen = new Set<string>();
      for (let s = 0; s < events.length; s += ROWS_PER_STATEMENT) {
        const chunk = events.slice(s, s + ROWS_PER_STATEMENT);
        const values = chunk.map((_, r) => `(${Array.from({ length: 12 }, (_, k) => `$${r * 12 + k + 1}`).join(", ")})`);
        const sql = `${SQL.insertEvent.replace(/VALUES \(.*\) ON/s, `VALUES ${values.join(", ")} ON`)} RETURNING device, seq`;
        const res = await c.query(sql, chunk.flatMap((e) => e.params));
        const fresh = new Set(res.rows.map((r: Row) => `${r.device}:${r.seq}`));
        for (const e of chunk) {
          const key = `${e.params[0]}:${e.params[1]}`;
          if (!fresh.has(key) || seen.has(key)) {
            // logged before (or earlier in this batch): a redelivery, or the same seq with other content
            const content = contentOfParams(e.params);
            const had = (await c.query(numbered(SQL.eventContentRow), [e.params[0], e.params[1]])).rows[0] as Row | undefined;
            if (had && contentOfRow(had) === content) out[e.i] = "duplicate";
            else out[e.i] = (await c.query(numbered(SQL.insertConflict), [e.params[0], e.params[1], content, e.params[11]])).rowCount === 1 ? "conflict" : "duplicate";
          }
          seen.add(key);
        }
      }
      const bySet = new Map<string, [string, Map<string, unknown>][]>();
      for (const [id, p] of patches) {
        const sig = [...p.keys()].sort().join(",");
        bySet.set(sig, [...(bySet.get(sig) ?? []), [id, p]]);
      }
      for (const [sig, rows] of bySet) {
        const cols = sig.split(",");
        for (let s = 0; s < rows.length; s += ROWS_PER_STATEMENT) {
          const chunk = rows.slice(s, s + ROWS_PER_STATEMENT);
          const w = cols.length + 1;
          const values = chunk.map((_, r) => `(${Array.from({ length: w }, (_, k) => `$${r * w + k + 1}`).join(", ")})`);
          await c.query(
            `INSERT INTO devices (id, ${cols.join(", ")}) VALUES ${values.join(", ")}
             ON CONFLICT (id) DO UPDATE SET ${cols.map((col) => `${col} = excluded.${col}`).join(", ")}`,
            chunk.flatMap(([id, p]) => [id, ...cols.map((col) => p.get(col))]),
          );
        }
      }
    });
    return out;
  }

  async park(p: Parked, digest: string): Promise<boolean> {
    return (await this.pool.query(numbered(SQL.park), parkParams(p, digest))).rowCount === 1;
  }

  async ingestIssues(limit = 10): Promise<IngestIssues> {
    return {
      conflicts: (await this.q<{ n: number }>(SQL.conflictCount))[0]!.n,
      parked: (await this.q<{ n: number }>(SQL.parkedCount))[0]!.n,
      recentConflicts: await this.q(SQL.recentConflicts, [limit]) as IngestIssues["recentConflicts"],
      recentParked: await this.q(SQL.recentParked, [limit]) as IngestIssues["recentParked"],
    };
  }

  async devices(): Promise<DeviceRow[]> {
    return (await this.q("SELECT * FROM devices ORDER BY id")).map(deviceOf);
  }

  async device(id: string): Promise<DeviceRow | undefined> {
    const [r] = await this.q("SELECT * FROM devices WHERE id = ?", [id]);
    return r ? deviceOf(r) : undefined;
  }

  async onlineOn(version: string): Promise<number> {
    return (await this.q<{ n: number }>("SELECT COUNT(*) AS n FROM devices WHERE version = ? AND online = 1", [version]))[0]!.n;
  }

  async history(device: string): Promise<EventRow[]> {
    return (await this.q("SELECT * FROM events WHERE device = ? ORDER BY seq", [device])).map(eventOf);
  }

  async eventCount(device?: string): Promise<number> {
    const rows = device === undefined
      ? await this.q<{ n: number }>("SELECT COUNT(*) AS n FROM events")
      : await this.q<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE device = ?", [device]);
    return rows[0]!.n;
  }

  async eventKeys(): Promise<string[]> {
    return (await this.q<{ device: string; seq: number }>("SELECT device, seq FROM events")).map((r) => `${r.device}:${r.seq}`);
  }

  async seqGaps(): Promise<number> {
    return (await this.q<{ n: number }>(SQL.seqGaps))[0]!.n;
  }

  async latestEvents(): Promise<{ device: string; seq: number; state: string }[]> {
    return this.q<{ device: string; seq: number; state: string }>(SQL.latestEvents);
  }

  async versionsByGroup(): Promise<Record<string, Record<string, number>>> {
    return groupVersions(await this.devices());
  }

  async versionTotals(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of await this.q<{ v: string; n: number }>(SQL.versionTotals)) out[r.v] = r.n;
    return out;
  }

  async failures(rolloutId: string, version: string): Promise<{ device: string; state: string; code: string | null }[]> {
    return this.q(SQL.failures, [rolloutId, version, version]);
  }

  async attempts(rolloutId: string, version: string): Promise<number> {
    return (await this.q<{ n: number }>(SQL.attempts, [rolloutId, version]))[0]!.n;
  }

  async putRelease(r: ReleaseRow): Promise<void> {
    await this.q(SQL.putRelease, releaseParams(r));
  }

  async releases(): Promise<ReleaseRow[]> {
    return (await this.q("SELECT * FROM releases ORDER BY created, id")).map(releaseOf);
  }

  async release(id: string): Promise<ReleaseRow | undefined> {
    const [r] = await this.q("SELECT * FROM releases WHERE id = ?", [id]);
    return r ? releaseOf(r) : undefined;
  }

  async transition(id: string, expect: Expect, t: Transition): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`xsota-release:${id}`]);
      const res = await c.query(numbered(SQL.casRelease), casParams(id, expect, t.next));
      if (res.rowCount !== 1) return false;
      if (t.ended) await c.query(numbered(SQL.stageEnded), [t.ended.at, id, t.ended.idx]);
      if (t.started) await c.query(numbered(SQL.stageStarted), [id, t.started.idx, t.started.percent, t.started.at]);
      return true;
    });
  }

  async stageStarted(release: string, idx: number, percent: number, at: number): Promise<void> {
    await this.q(SQL.stageStarted, [release, idx, percent, at]);
  }

  async stageEnded(release: string, idx: number, at: number): Promise<void> {
    await this.q(SQL.stageEnded, [at, release, idx]);
  }

  async stages(release: string): Promise<{ idx: number; percent: number; started: number; ended: number | null }[]> {
    return this.q("SELECT idx, percent, started, ended FROM stages WHERE release = ? ORDER BY started, idx", [release]);
  }

  async sample(time: number): Promise<void> {
    const by: Record<string, Record<string, number>> = { ...(await this.versionsByGroup()), "*": await this.versionTotals() };
    const rows = Object.entries(by).flatMap(([g, m]) => Object.entries(m).map(([v, n]) => [time, g, v, n]));
    if (!rows.length) return;
    const values = rows.map((_, r) => `($${r * 4 + 1}, $${r * 4 + 2}, $${r * 4 + 3}, $${r * 4 + 4})`);
    await this.pool.query(`INSERT INTO samples (time, grp, version, count) VALUES ${values.join(", ")}`, rows.flat());
  }

  async samples(): Promise<{ time: number; grp: string; version: string; count: number }[]> {
    return this.q("SELECT time, grp, version, count FROM samples ORDER BY time");
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.q(SQL.setMeta, [key, value]);
  }

  async meta(key: string): Promise<string | undefined> {
    return (await this.q<{ value: string }>("SELECT value FROM meta WHERE key = ?", [key]))[0]?.value;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
