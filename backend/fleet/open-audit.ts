/*
 * The one door to an audit log by its name (a PostgreSQL URL or a SQLite file), beside the stores
 * rather than in audit-store.ts, which both stores import: so nothing imports in a circle, and
 * each store is loaded only when it is asked for.
 */
import type { AuditStore } from "./audit-store";

/**
 * Open the audit log `spec` names: a postgres:// (or postgresql://) URL, else a SQLite file
 * path. `mustExist`: a SQLite file that is not there is FILE_NOT_FOUND (the read-only commands).
 * Throws DB_CONNECT when PostgreSQL cannot be reached.
 */
export async function openAuditStore(spec: string, options: { mustExist?: boolean } = {}): Promise<AuditStore> {
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { PgAuditLog } = await import("./audit-pg");
    return PgAuditLog.open(spec);
  }
  const [{ existsSync }, { AuditLog }, { OtaError }] = await Promise.all([import("node:fs"), import("./audit-log"), import("../../modules/errors")]);
  if (options.mustExist && !existsSync(spec)) throw new OtaError("FILE_NOT_FOUND", `audit log ${spec} (run 'xsota fleet run' first)`);
  return new AuditLog(spec);
}
