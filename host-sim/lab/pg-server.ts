/*
 * A private PostgreSQL server for tests and the bench: initdb into a fresh temp dir, then
 * `postgres` on 127.0.0.1 and a free port (its unix socket in the same dir), trust auth for
 * loopback, fsync off (a throwaway cluster). Debian's `postgresql` package puts the binaries in
 * /usr/lib/postgresql/<major>/bin; PG_BIN overrides.
 *
 * initdb and postgres refuse to run as root: as root, the data dir is handed to the `postgres`
 * user (created by the Debian package) and both are spawned with its uid and gid, so the child
 * is postgres itself and close() signals the server, not a wrapper (runuser exited on SIGINT and
 * left the server running).
 *
 * `findPostgres()` says why there is none (for the tests' skip message) instead of throwing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OtaError } from "../../modules/errors";
import { freePort } from "../../backend/mqtt/broker";

export interface PgBinaries {
  bin: string;
  /** As root: run as this uid/gid (the `postgres` user). */
  runAs?: { user: string; uid: number; gid: number };
}

/** The PostgreSQL binaries, or a sentence saying why there are none. */
export function findPostgres(): PgBinaries | string {
  let bin = process.env.PG_BIN;
  if (!bin && existsSync("/usr/lib/postgresql")) {
    const majors = readdirSync("/usr/lib/postgresql").filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
    for (const m of majors) if (existsSync(`/usr/lib/postgresql/${m}/bin/postgres`)) { bin = `/usr/lib/postgresql/${m}/bin`; break; }
  }
  if (!bin || !existsSync(join(bin, "initdb")) || !existsSync(join(bin, "postgres"))) {
    return "PostgreSQL is not installed (apt-get install -y postgresql, or PG_BIN=<dir with initdb and postgres>)";
  }
  if (process.getuid?.() !== 0) return { bin };
  const id = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (id.status !== 0) return "running as root and there is no 'postgres' user for initdb (Debian's package creates it)";
  return { bin, runAs: { user: "postgres", uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) } };
}

export interface PgServer {
  readonly port: number;
  /** The server's process (the postmaster): the root of its process tree. */
  readonly pid: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  /** A fresh database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stop (fast shutdown) and remove the data dir. Safe twice. */
  close(): Promise<void>;
}

function as(b: PgBinaries, dir: string): { uid?: number; gid?: number; cwd: string; env: NodeJS.ProcessEnv } {
  const env = { ...process.env, HOME: dir };
  return b.runAs ? { uid: b.runAs.uid, gid: b.runAs.gid, cwd: dir, env } : { cwd: dir, env };
}

/** Start a throwaway server. Throws DB_CONNECT with the reason. */
export async function startPgServer(): Promise<PgServer> {
  const b = findPostgres();
  if (typeof b === "string") throw new OtaError("DB_CONNECT", b);
  const dir = mkdtempSync(join(tmpdir(), "xsota-pg-"));
  const data = join(dir, "data");
  if (b.runAs) {
    chownSync(dir, b.runAs.uid, b.runAs.gid);
    chmodSync(dir, 0o700);
  }
  const init = spawnSync(join(b.bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"], { ...as(b, dir), encoding: "utf8" });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new OtaError("DB_CONNECT", `initdb failed: ${(init.stderr || init.stdout).trim().split("\n").slice(-3).join(" ")}`);
  }
  const port = await freePort();
  const args = ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"];
  const child: ChildProcess = spawn(join(b.bin, "postgres"), args, { ...as(b, dir), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  let exited = false;
  child.once("exit", () => { exited = true; });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const pg = (await import("pg")).default;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      rmSync(dir, { recursive: true, force: true });
      throw new OtaError("DB_CONNECT", `postgres exited: ${stderr.trim().split("\n").slice(-3).join(" ")}`);
    }
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch {
      await c.end().catch(() => {});
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
        throw new OtaError("DB_CONNECT", "postgres did not accept connections within 20 s");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let closed = false;
  return {
    port,
    pid: child.pid!,
    url,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, "")}"`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (!exited) {
        // SIGINT is postgres' fast shutdown.
        const gone = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGINT");
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
