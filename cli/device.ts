/*
 * xsota device: one simulated ESP32 through boot, update and confirmation against any update
 * host, then the flash image saved back.
 */
import { readFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import type { AuditEvent } from "../modules/events";
import { parseImageStart, APP_DESC_OFFSET, APP_DESC_SIZE } from "../modules/image";
import { parse, requireFile, requireOption, printJson, color, Progress, EXIT, type Command } from "./common";
import { VirtualClock } from "../backend/clock";
import { NodeHttp } from "../host-sim/engines/ports/http";
import { TcpMqttPort } from "../backend/mqtt/client";
import { SimDevice } from "../host-sim/chip/device";
import { SimChip } from "../host-sim/chip/chip";
import { loadPublicKey, keyConfigOf } from "../backend/release/keys";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import type { Engine } from "../host-sim/engines/engine";
import { outcomeOf, type Outcome } from "../host-sim/lab/scenarios";

const HELP = `Usage: xsota device --flash FILE --manifest URL --ca PEM --trust PEM [options]

Boots a simulated ESP32 from a flash image, checks the manifest, downloads, verifies and
installs the update, reboots, runs the 30 s self-test and commits or rolls back. Every state
transition is printed; the flash image is saved back (or to --out).

Options:
  --flash FILE        flash image (xsota flash create makes one)             (required)
  --manifest URL      https: URL of the signed release manifest              (required)
  --ca PEM            CA (or server certificate) to pin for TLS              (required)
  --trust PEM         public key trusted for manifests (repeatable)          (required)
  --image-key PEM     key for the image's espsecure signature (implies --require-signature)
  --require-signature refuse images without a valid espsecure signature block
  --device-id ID      device id / MAC (default 240ac4000001)
  --hardware REV      hardware revision (default esp32-rev3)
  --product NAME      product (default: the project name of the image in app0)
  --config FILE       JSON merged over the generated configuration
  --engine E          node (default): the firmware in Node; xs: in the XS engine (xsnap);
                      moddable: moddable-host/ built with mcconfig for x-cli-lin (Moddable's
                      own XS, http, securesocket, crypt, preference, timer, mqtt), one
                      process per boot over FILE, NVS in FILE.nvs/; needs $MODDABLE or
                      ../shared/moddable (built into out/ on first use). --realtime implied
  --realtime          let timers run on the wall clock instead of virtual time
  --mqtt URL          mqtt://HOST:PORT: report to a broker as a fleet device does (the
                      version on every boot, retained, on devices/<id>/version; state; each
                      audit event over QoS 1) and take announcements and commands
  --out FILE          save the flash here instead of over --flash
  --json              print the outcome as JSON
  -h, --help          this help

Exit status: 0 committed or nothing to do, 1 the update failed / was refused / rolled back,
2 usage, 3 environment (file, host).

Examples:
  xsota keygen -o key.pem --pub pub.pem
  xsota image build --version 1.0.0 -o fw-1.0.0.bin && xsota flash create -o flash.bin --image fw-1.0.0.bin
  mkdir -p release && xsota image build --version 1.1.0 -o release/fw-1.1.0.bin
  xsota manifest --image release/fw-1.1.0.bin --url https://127.0.0.1:8443/fw-1.1.0.bin --key key.pem -o release/release.json
  xsota serve --dir release --port 8443 --self-signed-ca ca &
  xsota device --flash flash.bin --manifest https://127.0.0.1:8443/release.json --ca ca/ca.pem --trust pub.pem
`;

async function loadEngine(name: string): Promise<Engine> {
  if (name === "node") return createNodeEngine();
  if (name === "xs") {
    try {
      const xs = (await import("../host-sim/engines/xs/index" as string)) as { createXsEngine?: () => Engine | Promise<Engine> };
      if (!xs.createXsEngine) throw new Error("host-sim/engines/xs/index.ts has no createXsEngine");
      return await xs.createXsEngine();
    } catch (e) {
      throw new OtaError("USAGE", `the xs engine is not available: ${(e as Error).message}`);
    }
  }
  throw new OtaError("USAGE", `--engine must be node or xs, not '${name}'`);
}

function projectOf(chip: SimChip): string | undefined {
  for (const label of ["app0", "app1"]) {
    try {
      const first = new Uint8Array(APP_DESC_OFFSET + APP_DESC_SIZE + 8);
      chip.partition(label).read(0, first);
      return parseImageStart(first).appDesc.projectName;
    } catch {
      // try the next slot
    }
  }
  return undefined;
}

const MARK: Record<string, (s: string) => string> = { committed: color.green, failed: color.red, "rolled-back": color.red, refused: color.yellow };

function describe(e: AuditEvent): string {
  const paint = MARK[e.state] ?? ((s: string) => s);
  const parts = [paint(e.state.padEnd(11)), e.to ? `${e.from} -> ${e.to}` : e.from];
  if (e.code) parts.push(e.code);
  if (e.detail) parts.push(color.dim(e.detail));
  return parts.join("  ");
}

export const command: Command = {
  name: "device",
  summary: "run one simulated ESP32 through boot, update and confirmation",
  help: HELP,
  async run(argv) {
    const { values } = parse(argv, {
      flash: { type: "string" }, manifest: { type: "string" }, ca: { type: "string" }, trust: { type: "string", multiple: true },
      "image-key": { type: "string", multiple: true }, "require-signature": { type: "boolean" },
      "device-id": { type: "string" }, hardware: { type: "string" }, product: { type: "string" }, config: { type: "string" },
      engine: { type: "string" }, realtime: { type: "boolean" }, out: { type: "string" }, json: { type: "boolean" }, mqtt: { type: "string" },
    }, false);
    const broker = values.mqtt === undefined ? undefined : mqttTarget(values.mqtt);
    const flashPath = requireFile(values.flash, "--flash");
    const manifestUrl = requireOption(values.manifest, "manifest");
    if (!/^https:\/\//i.test(manifestUrl)) throw new OtaError("HTTP_INSECURE_URL", `${manifestUrl}: the device fetches over https: only`);
    const ca = readFileSync(requireFile(values.ca, "--ca"), "utf8");
    const trust = values.trust ?? [];
    if (trust.length === 0) throw new OtaError("USAGE", "missing --trust");
    const trustedKeys = trust.map((p) => keyConfigOf(loadPublicKey(readFileSync(requireFile(p, "--trust"), "utf8"))));
    const imageKeys = (values["image-key"] ?? []).map((p) => keyConfigOf(loadPublicKey(readFileSync(requireFile(p, "--image-key"), "utf8"))));
    const chip = SimChip.load(flashPath);
    const product = values.product ?? projectOf(chip);
    if (!product) throw new OtaError("IMAGE_APP_DESC", "no app image in app0 or app1: use xsota flash create");
    const config: Record<string, unknown> = {
      product, manifestUrl, trustedKeys, checkIntervalMs: 0,
      requireImageSignature: values["require-signature"] === true || imageKeys.length > 0,
      ...(imageKeys.length ? { imageKeys } : {}),
      ...(broker ? { mqtt: broker } : {}),
      ...(values.config ? (JSON.parse(readFileSync(requireFile(values.config, "--config"), "utf8")) as Record<string, unknown>) : {}),
    };
    const json = values.json === true;
    if (values.engine === "moddable") return runOnModdable(flashPath, values.out, config, ca, values["device-id"], values.hardware, json);
    const engine = await loadEngine(values.engine ?? "node");
    const clock = new VirtualClock({ epoch: Date.now() });
    let lastOta: string | undefined;
    const say = (line: string) => { if (!json) process.stderr.write(line + "\n"); };
    const mqtt = broker ? new TcpMqttPort({ clock }) : undefined;
    const device = new SimDevice({
      chip, engine, clock, config,
      http: new NodeHttp({ ca, clock }),
      ...(mqtt ? { mqtt } : {}),
      deviceId: values["device-id"] ?? "240ac4000001",
      hardware: values.hardware ?? "esp32-rev3",
      onLog: (line) => { if (line.startsWith("ota ")) lastOta = line; },
      onBoot: (b) => {
        mqtt?.powerOff(); // a reset drops the chip's connection; the next boot makes its own
        say(color.dim(`boot #${b.n}: slot ota_${b.slot}, ${b.version} (${b.reason})`));
      },
      ...printer(say, json),
    });
    try {
      await device.run((d) => d.idle, { maxVirtualMs: 24 * 3600_000, maxRealMs: 30 * 60_000, quietMs: 100, ...(values.realtime ? { realtime: true } : {}) });
    } finally {
      await device.stop();
      mqtt?.powerOff();
      await engine.close();
    }
    const out = values.out ?? flashPath;
    chip.save(out);
    const outcome = outcomeOf("device", device);
    if (json) printJson({ ...outcome, flash: out });
    else {
      if (outcome.final === null && !outcome.bricked) say(lastOta ? `no update: ${lastOta.slice(4)}` : `no update: running ${outcome.running?.version}`);
      say(color.dim(`flash saved to ${out}; running ${outcome.running?.version ?? "nothing (bricked)"}`));
    }
    return exitOf(outcome, lastOta);
  },
};

/** The device's events as lines, and one progress bar per download (none with --json), for every engine. */
function printer(say: (line: string) => void, json: boolean): { onEvent(e: AuditEvent): void; onProgress(written: number, total: number): void } {
  let progress: Progress | undefined;
  return {
    onEvent: (e) => {
      if (e.state === "downloading" && e.progress !== undefined && e.progress > 0) return;
      if (progress) { progress.done(); progress = undefined; }
      say(describe(e));
    },
    onProgress: (w, t) => {
      if (json) return;
      progress ??= new Progress("download", t);
      progress.update(w);
    },
  };
}

/** --mqtt mqtt://HOST:PORT (plain TCP, as the simulator's MQTT port speaks). Throws USAGE. */
function mqttTarget(text: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new OtaError("USAGE", `--mqtt ${text}: not a URL (mqtt://HOST:PORT)`);
  }
  if (u.protocol !== "mqtt:") throw new OtaError("USAGE", `--mqtt ${text}: only mqtt://HOST:PORT (plain TCP) is simulated`);
  const port = u.port ? Number(u.port) : 1883;
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
}

function exitOf(outcome: Outcome, lastOta: string | undefined): number {
  if (outcome.bricked) return EXIT.FAILED;
  if (outcome.final === null) return lastOta && /^ota (refused|failed)/.test(lastOta) ? EXIT.FAILED : EXIT.OK;
  if (outcome.final === "committed") return EXIT.OK;
  if (outcome.final === "refused" && outcome.code === "POLICY_NOT_NEWER") return EXIT.OK;
  return EXIT.FAILED;
}

/** --engine moddable: host-sim/engines/moddable runs the program, one process per boot, over the flash file. */
async function runOnModdable(flashPath: string, out: string | undefined, config: Record<string, unknown>, ca: string, deviceId: string | undefined, hardware: string | undefined, json: boolean): Promise<number> {
  const { runModdable } = await import("../host-sim/engines/moddable/cli");
  const say = (line: string) => { if (!json) process.stderr.write(line + "\n"); };
  const r = await runModdable({
    flashPath, ...(out ? { out } : {}), config, caPem: ca, deviceId: deviceId ?? "240ac4000001", hardware: hardware ?? "esp32-rev3",
    say: (line) => say(color.dim(line)),
    onBoot: (b) => say(color.dim(`boot #${b.n}: slot ota_${b.slot}, ${b.version} (${b.reason}), moddable`)),
    ...printer(say, json),
  });
  if (json) printJson({ ...r.outcome, flash: r.flash });
  else say(color.dim(`flash saved to ${r.flash}; running ${r.outcome.running?.version ?? "nothing (bricked)"}`));
  return exitOf(r.outcome, r.lastOta);
}
