/*
 * xsota bench: performance and endurance figures, each measured against its limit in the same
 * run (bench/run.ts). Prints a table, writes the whole report as JSON.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OtaError } from "../modules/errors";
import { runBench, benchRows, formatRows, PARTS, type Part } from "../bench/run";
import { parse, printJson, EXIT, type Command } from "./common";

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), "..", "bench", "results");

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new OtaError("USAGE", `${what} must be a positive integer: ${text}`);
  return n;
}

export const command: Command = {
  name: "bench",
  summary: "measure throughput, XS cost, flash wear, resume, fleet scale and endurance",
  help: `Usage: xsota bench [options]

Runs the benchmarks, prints a table (figure, value, goal, status) and writes the full report
as JSON to bench/results/<timestamp>.json (or --out). Each figure is measured side by side with
its limit in the same run: this machine is shared and noisy, compare ratios, not seconds.

Parts: ${PARTS.join(", ")}
  throughput  1.5 MB update by the agent (Node and XS engines) over loopback HTTPS vs a bare
              HTTPS download + SHA-256 from the same host (medians: 25 rounds raw/Node, 5 of
              them with XS; 3 and 1 with --quick)
  xs          XS meter: compute per MB and per 4 KB chunk, allocation growth per chunk
  wear        erases and bytes per image sector, otadata writes per update, NVS writes per MB
  resume      bytes sent when the link drops at 10%, 50%, 90% of the image
  delta       patch share of the image, bytes and time at 26 KB/s, full vs delta, for real
              machine-code pairs (version string / one module changed); heatshrink only with --quick
  fleet       devices updated/s, CPU and peak memory at 100, 1,000, 5,000 devices (child processes;
              embedded aedes, SQLite)
  scale       the same at 1,000 and 10,000 devices on mosquitto and PostgreSQL (their own processes,
              their CPU counted), events ingested/s; skipped with the reason when either is missing
  encrypted   the update of an esp_encrypted_img file (RSA-3072, ECIES-P256) vs the plain update of
              the same 1.5 MB image, Node engine, 25 paired rounds (5 of 256 KB with --quick); one XS
              run each; bytes sent after a link drop at 10/50/90 % (encrypted restarts from 0)
  endurance   1,000 update cycles on one device with random power cuts, link drops, bad releases
  moddable    on Moddable's own toolchain and runtime (skipped, with the reason, without a tree):
              bytecode xsl links for esp32; the agent's 1.5 MB update vs a raw GET + SHA-256 in
              the same moddable-host program (~48 KB/s Linux socket: about a minute); peak live
              XS memory of an update above the idle app

Options:
  --only LIST        comma-separated parts (default: all)
  --quick            smaller runs: 1 throughput round, 256 KB wear/resume images, fleet 100 and 300,
                     100 endurance cycles
  --cycles N         endurance cycles
  --fleet LIST       fleet sizes, e.g. 100,1000,5000
  --scale LIST       sizes of the mosquitto + PostgreSQL series, e.g. 1000,10000
  --moddable-size N  image bytes of the moddable part's throughput run (default 1.5 MB; --quick 256 KB)
  --fleet-bound S    real-time bound of each fleet size's boot and of its rollout, seconds (default 300);
                     a size that hits it reports what it got
  --out FILE         write the JSON report here instead of bench/results/<timestamp>.json
  --json             print the JSON report instead of the table
  -h, --help         this text

Exit status: 0 every goal met, 1 a goal missed (the table says which), 2 usage.

Examples:
  npm run bench
  xsota bench --quick
  xsota bench --only wear,resume --json
  xsota bench --only fleet --fleet 100,1000`,
  async run(argv) {
    const { values } = parse(argv, {
      only: { type: "string" },
      quick: { type: "boolean" },
      cycles: { type: "string" },
      fleet: { type: "string" },
      "fleet-bound": { type: "string" },
      scale: { type: "string" },
      "moddable-size": { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
    }, false);
    if (values.help) {
      process.stdout.write(command.help + "\n");
      return EXIT.OK;
    }
    let only: Part[] | undefined;
    if (values.only !== undefined) {
      only = values.only.split(",").map((s) => s.trim()).filter(Boolean) as Part[];
      const bad = only.filter((p) => !(PARTS as readonly string[]).includes(p));
      if (bad.length || !only.length) throw new OtaError("USAGE", `--only takes ${PARTS.join(",")}; got '${values.only}'`);
    }
    const report = await runBench({
      ...(only ? { only } : {}),
      quick: values.quick ?? false,
      ...(values.cycles !== undefined ? { cycles: positiveInt(values.cycles, "--cycles") } : {}),
      ...(values.fleet !== undefined ? { fleet: values.fleet.split(",").map((s) => positiveInt(s.trim(), "--fleet")) } : {}),
      ...(values.scale !== undefined ? { scale: values.scale.split(",").map((s) => positiveInt(s.trim(), "--scale")) } : {}),
      ...(values["fleet-bound"] !== undefined ? { fleetBoundMs: positiveInt(values["fleet-bound"], "--fleet-bound") * 1000 } : {}),
      ...(values["moddable-size"] !== undefined ? { moddableSize: positiveInt(values["moddable-size"], "--moddable-size") } : {}),
      progress: (line) => process.stderr.write(line + "\n"),
    });
    const rows = benchRows(report);
    const out = values.out ?? join(RESULTS, `${report.date.replace(/[:.]/g, "-")}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ ...report, table: rows }, null, 2) + "\n");
    if (values.json) printJson({ ...report, table: rows });
    else {
      process.stdout.write(`xsota bench ${report.quick ? "--quick " : ""}${report.date} (node ${report.machine.node}, ${report.machine.cpus} x ${report.machine.cpu})\n`);
      process.stdout.write(formatRows(rows) + "\n");
      process.stderr.write(`report: ${out}\n`);
    }
    return rows.some((r) => r.status === "MISSED") ? EXIT.FAILED : EXIT.OK;
  },
};
