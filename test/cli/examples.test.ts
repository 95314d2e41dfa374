/*
 * Every example in every `xsota <command> --help` runs as written: the lines are taken from the
 * help texts themselves and run by bash, in help order, in one empty temporary directory (an
 * `xsota` on PATH runs bin/xsota.js), so an example may use the files an earlier one made, as a
 * newcomer following the help would. Commands that serve or run for long (`... &`, serve, fleet
 * run, demo, bench, npm) get a short lifetime: they pass when still running after it, or when
 * they end with status 0 before it. A line ending in "&" runs in the background until the
 * examples of its command are done (the server the next lines use). The S3 example finds an
 * S3-compatible server where it says (s3rver on 127.0.0.1:9000, bucket fw-releases, credentials
 * in the AWS_* variables), as a user with MinIO there would.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";
import type { Command } from "../../cli/common";

const ROOT = join(import.meta.dirname, "../..");
/** Help order: each command's examples may use the files of the commands before it. */
const ORDER = ["keygen", "image", "flash", "sign", "encrypt", "decrypt", "delta", "manifest", "verify", "publish", "serve", "device", "fleet", "demo", "bench"];
/** Long runs (servers, demo, bench, a fleet controller, a 1000-device simulation): a short lifetime. */
const LONG = /^(mkdir -p \S+ && )?(xsota (serve|demo|bench)\b|xsota fleet run\b|xsota fleet sim --devices \d{3,}|npm |NO_COLOR=1 xsota demo)/;
const LIFETIME_MS = 3000;
/** Where the S3 example's endpoint is, and its credentials (s3rver's). */
const S3_PORT = 9000;
const S3_ENV = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };

let dir = "";
let bin = "";
let s3: { close(): Promise<void> } | undefined;
const examples: { command: string; line: string }[] = [];

/** The lines of a help text's Examples: section, continuation lines (trailing "\") joined. */
function examplesOf(help: string): string[] {
  const at = help.indexOf("\nExamples:\n");
  if (at < 0) return [];
  const lines: string[] = [];
  let pending = "";
  for (const raw of help.slice(at + 11).split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (line.endsWith("\\")) { pending += line.slice(0, -1) + " "; continue; }
    lines.push(pending + line);
    pending = "";
  }
  return lines;
}

interface Running { status: number | null; out: string; survived: boolean; done: Promise<void>; stop(): void }

/** Start one example line. `survived`: still running when stopped (a server, a long run). */
function start(line: string, lifetimeMs: number | undefined): Running {
  const cwd = line.startsWith("npm ") ? ROOT : dir;
  const p = spawn("bash", ["-c", line.replace(/&\s*(#.*)?$/, "")], { cwd, env: { ...process.env, ...S3_ENV, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const r: Running = { status: null, out: "", survived: false, done: Promise.resolve(), stop: () => {} };
  const take = (d: Buffer) => { if (r.out.length < 4000) r.out += d.toString(); };
  p.stdout.on("data", take);
  p.stderr.on("data", take);
  let exited = false;
  const signal = (s: NodeJS.Signals) => { try { process.kill(-p.pid!, s); } catch { /* gone */ } };
  let hard: ReturnType<typeof setTimeout> | undefined;
  r.stop = () => {
    if (exited) return;
    r.survived = true;
    signal("SIGINT");
    hard = setTimeout(() => signal("SIGKILL"), 5000);
  };
  const lifetime = lifetimeMs === undefined ? undefined : setTimeout(r.stop, lifetimeMs);
  const limit = setTimeout(() => signal("SIGKILL"), 120_000);
  r.done = new Promise((resolve) => p.on("close", (status) => {
    exited = true;
    r.status = status;
    clearTimeout(lifetime);
    clearTimeout(hard);
    clearTimeout(limit);
    resolve();
  }));
  return r;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "xsota-examples-"));
  bin = join(dir, ".bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "xsota"), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, "bin/xsota.js")}" "$@"\n`);
  chmodSync(join(bin, "xsota"), 0o755);
  const server = new S3rver({ port: S3_PORT, address: "127.0.0.1", directory: join(dir, ".s3"), silent: true, configureBuckets: [{ name: "fw-releases" }] });
  try {
    await server.run();
  } catch (e) {
    throw new Error(`the S3 example's endpoint 127.0.0.1:${S3_PORT} could not be served (s3rver): ${(e as Error).message}`);
  }
  s3 = server;
  for (const name of ORDER) {
    const { command } = (await import(`../../cli/${name}.ts`)) as { command: Command };
    for (const line of examplesOf(command.help)) examples.push({ command: name, line });
  }
});

afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("every --help example runs as written", () => {
  it("each command's help has examples, and each one runs", async () => {
    expect(new Set(examples.map((e) => e.command))).toEqual(new Set(ORDER));
    const failed: string[] = [];
    const check = (command: string, line: string, r: Running) => {
      if (r.status !== 0 && !r.survived) failed.push(`[${command}] ${line}\n  -> status ${r.status}: ${r.out.trim().split("\n").slice(-3).join(" | ")}`);
    };
    for (const command of ORDER) {
      // A line ending in "&" keeps running (a server the next lines use) until its command's examples are done.
      const background: { line: string; r: Running }[] = [];
      for (const e of examples.filter((x) => x.command === command)) {
        if (/&\s*(#.*)?$/.test(e.line)) {
          const r = start(e.line, undefined);
          background.push({ line: e.line, r });
          for (let t = 0; t < 150 && !r.out && r.status === null; t++) await sleep(100);
          continue;
        }
        const r = start(e.line, LONG.test(e.line) ? LIFETIME_MS : undefined);
        await r.done;
        check(command, e.line, r);
      }
      for (const b of background) { b.r.stop(); await b.r.done; check(command, b.line, b.r); }
    }
    expect(failed, failed.join("\n")).toEqual([]);
  }, 600_000);
});
