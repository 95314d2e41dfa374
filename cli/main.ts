/*
 * xsota: the build-server and simulator command line. Each subcommand lives in its own file
 * and is loaded on demand; this file only dispatches.
 */
import { OtaError } from "../modules/errors";
import { reportError, color, type Command } from "./common";

type Loader = () => Promise<{ command: Command }>;

/** name -> [summary, loader]. Summaries live here so `xsota --help` loads nothing. */
const COMMANDS: Record<string, [string, Loader]> = {
  image: ["build or inspect ESP32 app images (test firmware)", () => import("./image")],
  flash: ["create or inspect a simulated flash image", () => import("./flash")],
  keygen: ["generate a signing key or a device decryption key", () => import("./keygen")],
  sign: ["sign a firmware image as espsecure.py sign_data does", () => import("./sign")],
  encrypt: ["encrypt an image for a device key (ESP-IDF esp_encrypted_img)", () => import("./encrypt")],
  decrypt: ["decrypt an esp_encrypted_img file, checking its tag", () => import("./decrypt")],
  verify: ["verify a signed firmware image or manifest", () => import("./verify")],
  manifest: ["write a signed update manifest for an image", () => import("./manifest")],
  root: ["sign a root file: the keys and thresholds of each role, and the TLS anchors", () => import("./root")],
  rollout: ["sign a rollout document for a release (roles mode): percent, groups, force, new roots", () => import("./rollout")],
  publish: ["lay out a release for a static host or an S3 bucket", () => import("./publish")],
  delta: ["make, apply or describe a delta patch (detools sequential, esp_delta_ota)", () => import("./delta")],
  serve: ["serve a release tree over HTTPS (Range, ETag)", () => import("./serve")],
  device: ["run one simulated ESP32 through boot, update and confirmation", () => import("./device")],
  provision: ["write a simulated device's own values (id, groups, broker credentials) into its NVS", () => import("./provision")],
  component: ["compile the component to JavaScript + typings, for apps built without tsc", () => import("./component")],
  fleet: ["fleet controller: rollouts, forced updates, audit log, fleet view", () => import("./fleet")],
  demo: ["the whole story on the embedded defaults (npm start)", () => import("./demo")],
  bench: ["benchmarks: throughput, XS cost, flash wear, fleet scale", () => import("./bench")],
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const rows = Object.entries(COMMANDS).map(([name, [summary]]) => `  ${name.padEnd(width)}  ${summary}`);
  return [
    "Usage: xsota <command> [options]",
    "",
    "Commands:",
    ...rows,
    "",
    "Run 'xsota <command> --help' for a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage() + "\n");
    return name ? 0 : 2;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`${color.red("error")} USAGE: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  let command: Command;
  try {
    command = (await entry[1]()).command;
  } catch (e) {
    return reportError(new OtaError("INTERNAL", `command '${name}' failed to load: ${(e as Error).message}`));
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help.trimEnd() + "\n");
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    return reportError(e, name);
  }
}
