/* The fleet simulator's report as text (xsota fleet sim). */
import type { FleetSimReport } from "./fleet-sim";

/** The report as text (xsota fleet sim). */
export function formatReport(r: FleetSimReport): string {
  const versions = Object.keys(r.final.totals);
  return [
    `fleet sim: ${r.devices} devices, seed ${r.seed}, broker ${r.broker}, ${r.imageBytes / 1024} KB images`,
    `release ${r.release.id}: ${r.release.status}${r.release.flagged ? " (FLAGGED)" : ""} at stage ${r.release.stage + 1}${r.release.reason ? `: ${r.release.reason}` : ""}`,
    `updated ${r.updated}, rolled back ${r.rolledBack}, failed ${r.failed}, power cuts ${r.powerCuts}, link drops ${r.linkDrops}`,
    `events: ${r.events.emitted} emitted, ${r.events.logged} logged, ${r.events.lost} lost, ${r.events.duplicatesDropped} duplicates dropped${r.events.conflicts || r.events.parked ? `, ${r.events.conflicts} conflicts, ${r.events.parked} parked` : ""}`,
    `time: ${r.virtualMinutes} virtual minutes in ${r.realSeconds} s real; ${r.devicesUpdatedPerSecond} devices updated/s; peak RSS ${r.peakRssMb} MB`,
    "",
    "minute  " + versions.join("  "),
    ...r.timeline.map((t) => `${String(t.minute).padStart(6)}  ${versions.map((v) => String(t.versions[v] ?? 0).padStart(v.length)).join("  ")}`),
    "",
    "group    " + versions.join("  "),
    ...Object.entries(r.final.byGroup).map(([g, m]) => `${g.padEnd(8)} ${versions.map((v) => String(m[v] ?? 0).padStart(v.length)).join("  ")}`),
  ].join("\n");
}
