/*
 * xsota demo (npm start): the seed's whole story on the embedded defaults. Everything it
 * needs starts and stops inside this process; files go to ./out/demo (git-ignored).
 */
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { OtaError } from "../modules/errors";
import { BAD_REVISION, closeServed, runDemo, type DemoResult } from "./demo/story";
import { Ui } from "./demo/ui";
import type { External } from "./demo/fleet";
import { parse, printJson, requireFile, EXIT, type Command } from "./common";

const DEFAULT_OUT = fileURLToPath(new URL("../out/demo", import.meta.url));

const HELP = `Usage: xsota demo [options]

The whole OTA story on simulated ESP32s, nothing to start by hand: a signing key and a CA are
generated, firmware 1.0.0, 1.1.0, 1.2.0 (its self-test fails on ${BAD_REVISION} boards) and 1.2.1
are built and signed, an HTTPS update host and an MQTT broker start on loopback, the fleet boots
in the XS engine, 1.1.0 rolls out in stages, 1.2.0 rolls back on the bad revision until the
controller halts it, 1.2.1 is forced to every group, and the audit table is printed.
Watch windows and the 30 s self-tests run in virtual time.

Options:
  --devices N       fleet size, 6..200 (default 12)
  --engine E        xs (default: the device modules in the real XS engine) or node
  --quick           16 KB images instead of 64 KB (faster downloads)
  --image-kb N      image size in KB (overrides --quick)
  --out DIR         where keys, certificates, firmware, the published tree and audit.db go
                    (default ./out/demo; emptied first)
  --serve           keep the fleet view (and the fleet) up after the story, until Ctrl-C
  --port N          fleet view port with --serve (default 8080; 0 = any free port)
  --max-seconds N   give up after N real seconds (default 300)

Your own services instead of the embedded ones:
  --update-url URL  an https: URL where your server serves --www (with Range requests)
  --www DIR         the directory your server serves: the demo publishes the release tree there
                    (images/, products/thermo/stable/...) and rewrites latest.json per stage
  --ca PEM          the CA (or server certificate) devices pin for your update host
  --broker URL      mqtt://host:port of your broker (MQTT 3.1.1, anonymous); default: embedded aedes
  --json            print the outcome as JSON (no story text)

Exit status: 0 the story ran as told, 1 it did not (the mismatch is printed), 2 usage,
3 environment (a busy port).

Examples:
  npm start
  xsota demo --devices 20 --serve
  xsota demo --engine node --quick --json
  mkdir -p ota && xsota serve --dir ota --port 8443 --self-signed-ca ca &   # or nginx, a CDN...
  xsota demo --update-url https://127.0.0.1:8443 --www ota --ca ca/ca.pem   # --broker mqtt://HOST:1883 for your broker
  NO_COLOR=1 xsota demo > story.txt
`;

function intOption(text: string | undefined, name: string, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new OtaError("USAGE", `--${name} must be an integer in ${min}..${max}, not '${text}'`);
  return n;
}

/** Fail early (before the story) when the fleet view's port is taken. Throws PORT_BUSY. */
async function portFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once("error", () => reject(new OtaError("PORT_BUSY", `127.0.0.1:${port} (the fleet view's --port)`)));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
  });
}

/** --update-url/--www/--ca and --broker -> External. Throws USAGE, FILE_NOT_FOUND. */
function externalOptions(v: { "update-url"?: string; www?: string; ca?: string; broker?: string }): External | undefined {
  const ext: External = {};
  const given = [v["update-url"], v.www, v.ca].filter((x) => x !== undefined).length;
  if (given > 0 && given < 3) throw new OtaError("USAGE", "--update-url, --www and --ca go together");
  if (given === 3) {
    const www = resolve(v.www!);
    if (!existsSync(www) || !statSync(www).isDirectory()) throw new OtaError("FILE_NOT_FOUND", `--www ${www} is not a directory`);
    ext.update = { url: v["update-url"]!, www, ca: readFileSync(requireFile(v.ca, "--ca"), "utf8") };
  }
  if (v.broker !== undefined) {
    let u: URL;
    try {
      u = new URL(v.broker);
    } catch {
      throw new OtaError("USAGE", `--broker is not a URL: '${v.broker}' (mqtt://host:port)`);
    }
    if (u.protocol !== "mqtt:") throw new OtaError("USAGE", `--broker must be mqtt://host:port, not '${v.broker}'`);
    ext.broker = { host: u.hostname, port: u.port ? Number(u.port) : 1883 };
  }
  return ext.update || ext.broker ? ext : undefined;
}

/** What the story must have shown; the mismatches, empty when it ran as told. */
export function checkStory(r: DemoResult): string[] {
  const bad: string[] = [];
  const rel = (v: string) => r.releases.find((x) => x.version === v);
  if (rel("1.1.0")?.status !== "done") bad.push(`1.1.0 rollout ended ${rel("1.1.0")?.status ?? "missing"}, not done`);
  const r120 = rel("1.2.0");
  if (r120?.status !== "halted" || !r120.flagged) bad.push(`1.2.0 rollout ended ${r120?.status ?? "missing"}, not halted and flagged`);
  if (!r.rolledBack.length) bad.push("no device rolled 1.2.0 back");
  for (const x of r.rolledBack) if (x.hardware !== BAD_REVISION) bad.push(`${x.id} (${x.hardware}) rolled back, but only ${BAD_REVISION} should`);
  for (const d of r.devices) if (d.version !== "1.2.1") bad.push(`${d.id} runs ${d.version ?? "nothing"}, not 1.2.1`);
  return bad;
}

export const command: Command = {
  name: "demo",
  summary: "the whole story on the embedded defaults (npm start)",
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      devices: { type: "string" }, engine: { type: "string" }, quick: { type: "boolean" }, "image-kb": { type: "string" },
      out: { type: "string" }, serve: { type: "boolean" }, port: { type: "string" }, "max-seconds": { type: "string" },
      json: { type: "boolean" }, "update-url": { type: "string" }, www: { type: "string" }, ca: { type: "string" }, broker: { type: "string" },
    });
    if (positionals.length) throw new OtaError("USAGE", `unexpected argument '${positionals[0]}'`);
    const engine = values.engine ?? "xs";
    if (engine !== "xs" && engine !== "node") throw new OtaError("USAGE", `--engine must be xs or node, not '${engine}'`);
    if (values.port !== undefined && !values.serve) throw new OtaError("USAGE", "--port needs --serve");
    const devices = intOption(values.devices, "devices", 12, 6, 200);
    const imageKb = intOption(values["image-kb"], "image-kb", values.quick ? 16 : 64, 8, 1024);
    const servePort = values.serve ? intOption(values.port, "port", 8080, 0, 65535) : undefined;
    const maxSeconds = intOption(values["max-seconds"], "max-seconds", 300, 10, 3600);
    const external = externalOptions(values);
    if (servePort) await portFree(servePort);
    const ui = new Ui({ quiet: !!values.json });
    let result: DemoResult;
    try {
      result = await runDemo({ devices, engine, imageBytes: imageKb * 1024, out: resolve(values.out ?? DEFAULT_OUT), servePort, maxRealMs: maxSeconds * 1000, ...(external ? { external } : {}) }, ui);
    } catch (e) {
      ui.clearBar();
      if (e instanceof OtaError) throw e;
      if (process.env.XSOTA_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      throw new OtaError("INTERNAL", `the demo stopped: ${(e as Error).message} (XSOTA_DEBUG=1 for the stack)`);
    }
    const mismatches = checkStory(result);
    if (values.json) printJson({ ...result, ok: mismatches.length === 0, mismatches });
    else {
      ui.step(8, "What next");
      ui.info(`files: ${result.out} (keys/, tls/, firmware/, audit.db); the published tree: ${result.www}`);
      ui.info(`audit log: node bin/xsota.js fleet status --db ${result.out}/audit.db   (history <device-id> for one device's steps)`);
      if (result.viewUrl) ui.info(`fleet view: ${ui.c.bold(result.viewUrl)}  (Ctrl-C to stop)`);
      else ui.info(`fleet view: npm start -- --serve   then open http://127.0.0.1:8080/`);
      ui.info(`took ${result.realSeconds} s (watch windows and self-tests in virtual time)`);
      if (mismatches.length) for (const m of mismatches) ui.bad(m);
    }
    if (result.viewUrl) {
      await new Promise<void>((r) => {
        process.once("SIGINT", r);
        process.once("SIGTERM", r);
      });
      await closeServed();
    }
    return mismatches.length ? EXIT.FAILED : EXIT.OK;
  },
};
