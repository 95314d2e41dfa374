/*
 * XS cost of an update, from the engine's own meter: a 256 KB and a full-slot (~1.5 MB) update
 * run end to end in XS (real HTTPS on loopback, the simulated chip), then compute per MB and
 * per 4 KB chunk, footprint and live slots. Run: npx tsx bench/xs-cost.ts [--json]
 * (`xsota bench` can call xsCostReport() from host-sim/engines/xs/meter.ts.)
 */
import { xsCostReport, formatCostReport } from "../host-sim/engines/xs/meter";

const report = await xsCostReport();
if (process.argv.includes("--json")) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
else process.stdout.write(formatCostReport(report) + "\n");
