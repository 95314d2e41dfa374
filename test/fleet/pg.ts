/* A private PostgreSQL server per test file (host-sim/lab/pg-server.ts), or the reason there is none. */
import { beforeAll, afterAll } from "vitest";
import { findPostgres, startPgServer, type PgServer } from "../../host-sim/lab/pg-server";
import { driveUntil, type DriveOptions, type VirtualClock } from "../../backend/clock";

const found = findPostgres();
/** Why the PostgreSQL tests are skipped, or undefined when they run. */
export const noPostgres: string | undefined = typeof found === "string" ? found : undefined;
if (noPostgres) console.warn(`PostgreSQL tests skipped: ${noPostgres}`);

/** Start a server before the file's tests (when there is one); `fresh()` gives a new database's URL. */
export function usePg(): { fresh(): Promise<string> } {
  let server: PgServer | undefined;
  let n = 0;
  beforeAll(async () => {
    if (!noPostgres) server = await startPgServer();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });
  return {
    fresh: () => server!.createDatabase(`t${process.pid}_${++n}`),
  };
}

/** driveUntil for a condition that needs the database: polled in the background, read synchronously. */
export async function driveUntilAsync(clock: VirtualClock, cond: () => Promise<boolean>, options: DriveOptions = {}): Promise<void> {
  let done = false;
  let stop = false;
  const poll = (async () => {
    while (!stop && !done) {
      done = await cond();
      if (!done) await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    await driveUntil(clock, () => done, options);
  } finally {
    stop = true;
    await poll;
  }
}

/** Wait in real time for an async condition. */
export async function waitFor(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
