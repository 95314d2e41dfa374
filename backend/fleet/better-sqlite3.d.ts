/* The part of better-sqlite3's API the audit log uses (the package ships no typings here). */
declare module "better-sqlite3" {
  interface RunResult {
    changes: number;
    lastInsertRowid: number | bigint;
  }
  interface Statement<P extends unknown[] = unknown[]> {
    run(...params: P): RunResult;
    get(...params: P): unknown;
    all(...params: P): unknown[];
  }
  interface Database {
    prepare<P extends unknown[] = unknown[]>(sql: string): Statement<P>;
    exec(sql: string): Database;
    pragma(sql: string): unknown;
    transaction<F extends (...args: never[]) => unknown>(fn: F): F;
    close(): void;
    readonly open: boolean;
  }
  interface DatabaseConstructor {
    new (filename: string, options?: { readonly?: boolean; fileMustExist?: boolean }): Database;
  }
  const Database: DatabaseConstructor;
  export default Database;
  export type { Database, Statement };
}
