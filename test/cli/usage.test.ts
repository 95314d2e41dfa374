/*
 * Bad usage gets help and a coded error, not a stack trace: every subcommand run as a child
 * process (`node bin/xsota.js ...`, as a user types it) with unknown commands and options,
 * missing and corrupt files, unreachable hosts and brokers, and busy ports. Each case checks
 * the exit status (0 ok, 1 failed, 2 usage, 3 environment), the error code on stderr, and that
 * no stack frame leaks out.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKey, writeKeyFiles } from "../../backend/release/keys";
import { makeCa } from "../../backend/release/pki";
import { createManifest } from "../../backend/release/manifest-tool";
import { buildImage } from "../../host-sim/chip/image-builder";
import { SimChip } from "../../host-sim/chip/chip";
import { writeImage } from "../../host-sim/lab/lab";
import { AuditLog } from "../../backend/fleet/audit-log";

const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/xsota.js");
const COMMANDS = ["demo", "fleet"];
const STACK = /\n\s+at .+[:(]\d+:\d+|\.ts:\d+:\d+/;

interface Run { status: number | null; stdout: string; stderr: string }
interface Case { name: string; args: () => string[]; status: number; stderr?: RegExp; stdout?: RegExp; output?: RegExp }

function xsota(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env.XSOTA_DEBUG;
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => p.kill("SIGKILL"), 40_000);
    p.on("close", (status) => {
      clearTimeout(kill);
      resolve({ status, stdout, stderr });
    });
  });
}

let dir = "";
let busy: Server;
let busyPort = 0;
const f = (name: string) => join(dir, name);

const CASES: Case[] = [
  { name: "no command: the command list", args: () => [], status: 2, stdout: /Usage: xsota <command>[\s\S]*demo/ },
  { name: "unknown command", args: () => ["frobnicate"], status: 2, stderr: /USAGE: unknown command 'frobnicate'[\s\S]*Commands:/ },
  { name: "unknown option", args: () => ["keygen", "--frob", "-o", f("k2.pem")], status: 2, stderr: /USAGE:.*--frob[\s\S]*hint:.*xsota keygen --help/ },
  { name: "image: missing subcommand", args: () => ["image"], status: 2, stderr: /USAGE/ },
  { name: "image info: missing file", args: () => ["image", "info", f("nope.bin")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "image info: garbage", args: () => ["image", "info", f("junk.bin")], status: 1, stderr: /IMAGE_TRUNCATED/ },
  { name: "image build: output dir missing", args: () => ["image", "build", "--version", "1.0.0", "-o", f("no/such/dir/x.bin")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "flash show: missing file", args: () => ["flash", "show", f("nope.flash")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "flash show: not a flash image", args: () => ["flash", "show", f("junk.bin")], status: 1, stderr: /PTABLE_BINARY/ },
  { name: "keygen: bad type", args: () => ["keygen", "--type", "dsa", "-o", f("k3.pem")], status: 2, stderr: /USAGE/ },
  { name: "sign: missing key", args: () => ["sign", "--key", f("nope.pem"), f("fw.bin"), "-o", f("x.bin")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "verify: garbage key", args: () => ["verify", "--pub", f("junk.bin"), f("fw.bin")], status: 1, stderr: /KEY_FORMAT/ },
  { name: "manifest: missing key", args: () => ["manifest", "--image", f("fw.bin"), "--url", "https://127.0.0.1/x.bin", "--key", f("nope.pem"), "-o", f("m.json")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "manifest: http: image URL the device would refuse", args: () => ["manifest", "--image", f("fw.bin"), "--url", "http://127.0.0.1/x.bin", "--key", f("key.pem"), "-o", f("m.json")], status: 1, stderr: /HTTP_INSECURE_URL/ },
  { name: "manifest: public key given as the signing key", args: () => ["manifest", "--image", f("fw.bin"), "--url", "https://127.0.0.1/x.bin", "--key", f("key.pub"), "-o", f("m.json")], status: 1, stderr: /KEY_FORMAT/ },
  { name: "publish: missing manifest", args: () => ["publish", "--dir", f("www"), f("nope.json"), f("fw.bin")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "serve: missing dir", args: () => ["serve", "--dir", f("nope-dir")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "serve: busy port", args: () => ["serve", "--dir", f("www"), "--port", String(busyPort), "--self-signed-ca", f("serve-ca")], status: 3, stderr: /PORT_BUSY[\s\S]*hint:.*--port/ },
  { name: "device: missing flash", args: () => ["device", "--flash", f("nope.flash"), "--manifest", "https://127.0.0.1:1/m.json", "--ca", f("ca/ca.pem"), "--trust", f("key.pub")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "device: http: manifest URL", args: () => ["device", "--flash", f("a.flash"), "--manifest", "http://127.0.0.1:1/m.json", "--ca", f("ca/ca.pem"), "--trust", f("key.pub")], status: 1, stderr: /HTTP_INSECURE_URL/ },
  { name: "device: unreachable update host", args: () => ["device", "--flash", f("b.flash"), "--manifest", "https://127.0.0.1:1/m.json", "--ca", f("ca/ca.pem"), "--trust", f("key.pub")], status: 1, output: /HTTP_CONNECT/ },
  { name: "fleet: unknown subcommand", args: () => ["fleet", "frob"], status: 2, stderr: /USAGE/ },
  { name: "fleet status: missing audit log", args: () => ["fleet", "status", "--db", f("nope.db")], status: 3, stderr: /FILE_NOT_FOUND/ },
  { name: "fleet status: unreachable PostgreSQL", args: () => ["fleet", "status", "--db", "postgres://xsota@127.0.0.1:1/fleet"], status: 3, stderr: /DB_CONNECT/ },
  { name: "fleet halt: no controller running", args: () => ["fleet", "halt", "--db", f("idle.db")], status: 3, stderr: /HTTP_CONNECT/ },
  { name: "fleet run: unreachable broker", args: () => ["fleet", "run", "--manifest", f("release.json"), "--key", f("key.pem"), "--broker", "mqtt://127.0.0.1:1", "--db", f("f1.db")], status: 3, stderr: /MQTT_CONNECT/ },
  { name: "fleet run: broker is not a URL", args: () => ["fleet", "run", "--manifest", f("release.json"), "--key", f("key.pem"), "--broker", "notaurl", "--db", f("f2.db")], status: 2, stderr: /USAGE: not a URL: 'notaurl'/ },
  { name: "fleet run: busy broker port", args: () => ["fleet", "run", "--manifest", f("release.json"), "--key", f("key.pem"), "--embedded", "aedes", "--mqtt-port", String(busyPort), "--db", f("f3.db")], status: 3, stderr: /PORT_BUSY/ },
  { name: "fleet run: busy fleet-view port", args: () => ["fleet", "run", "--manifest", f("release.json"), "--key", f("key.pem"), "--embedded", "aedes", "--mqtt-port", "0", "--http-port", String(busyPort), "--db", f("f4.db")], status: 3, stderr: /PORT_BUSY/ },
  { name: "demo: too few devices", args: () => ["demo", "--devices", "3"], status: 2, stderr: /USAGE: .*--devices/ },
  { name: "demo: unknown engine", args: () => ["demo", "--engine", "v8"], status: 2, stderr: /USAGE: .*--engine/ },
  { name: "demo: busy fleet-view port", args: () => ["demo", "--serve", "--port", String(busyPort), "--out", f("demo")], status: 3, stderr: /PORT_BUSY/ },
  { name: "demo: unreachable update host", args: () => ["demo", "--engine", "node", "--quick", "--update-url", "https://127.0.0.1:1", "--www", f("www"), "--ca", f("ca/ca.pem"), "--out", f("demo-h")], status: 3, stderr: /HTTP_CONNECT/ },
  { name: "demo: unreachable broker", args: () => ["demo", "--engine", "node", "--quick", "--broker", "mqtt://127.0.0.1:1", "--out", f("demo-b")], status: 3, stderr: /MQTT_CONNECT/ },
  { name: "demo: --update-url without --www and --ca", args: () => ["demo", "--update-url", "https://127.0.0.1:1"], status: 2, stderr: /USAGE: .*go together/ },
  { name: "bench: unknown option", args: () => ["bench", "--frob"], status: 2, stderr: /USAGE/ },
  ...COMMANDS.map((c): Case => ({ name: `${c} --help`, args: () => [c, "--help"], status: 0, stdout: /Usage: xsota/ })),
];

const results = new Map<string, Run>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "xsota-usage-"));
  writeFileSync(f("junk.bin"), "garbage\n");
  mkdirSync(f("www"));
  const key = generateKey("ecdsa-p256");
  writeKeyFiles(key, f("key.pem"), f("key.pub"));
  await makeCa(f("ca"));
  const fw = buildImage({ version: "1.1.0", project: "xsota", size: 16 * 1024 });
  writeFileSync(f("fw.bin"), fw);
  writeFileSync(f("release.json"), createManifest({ product: "xsota", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/fw.bin", image: fw, keys: [key] }));
  for (const name of ["a.flash", "b.flash"]) {
    const chip = SimChip.create({});
    writeImage(chip, "app0", buildImage({ version: "1.0.0", project: "xsota", size: 16 * 1024 }));
    chip.save(f(name));
  }
  new AuditLog(f("idle.db")).close();
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  busyPort = (busy.address() as { port: number }).port;
  // Four at a time: each is a cold `node` + tsx start.
  const queue = [...CASES];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let c = queue.shift(); c; c = queue.shift()) results.set(c.name, await xsota(c.args()));
  }));
}, 180_000);

afterAll(async () => {
  await new Promise<void>((r) => (busy ? busy.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

describe("xsota: bad usage gets help and a coded error, never a stack trace", () => {
  for (const c of CASES) {
    it(`${c.name}: exit ${c.status}`, () => {
      const r = results.get(c.name)!;
      const shown = `xsota ${c.args().join(" ")}\nstatus ${r.status}\nstdout: ${r.stdout.slice(0, 600)}\nstderr: ${r.stderr.slice(0, 600)}`;
      expect(r.status, shown).toBe(c.status);
      expect(r.stderr + r.stdout, shown).not.toMatch(STACK);
      expect(r.stderr, shown).not.toMatch(/INTERNAL/);
      if (c.stderr) expect(r.stderr, shown).toMatch(c.stderr);
      if (c.stdout) expect(r.stdout, shown).toMatch(c.stdout);
      if (c.output) expect(r.stdout + r.stderr, shown).toMatch(c.output);
      if (c.status === 2 && c.args().length > 0) expect(r.stderr, shown).toMatch(/hint:|Usage:/);
    });
  }
});
