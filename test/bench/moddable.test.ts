/*
 * The bench's Moddable rows (bench/moddable-run.ts, bench/run.ts benchRows): on the real runtime
 * with a 32 KB image (the bench's 1.5 MB takes half a minute on the Linux socket), the
 * throughput and memory rows exist with their goals; without a Moddable tree they say why they
 * are skipped. The esp32 code-size link is left to test/device (it takes a minute).
 */
import { describe, expect, it } from "vitest";
import { skip, program, BUILD_WAIT_MS } from "../moddable/built";
import { benchRows, runBench, type BenchReport } from "../../bench/run";
import type { ModdableRuntimeResult } from "../../bench/moddable-run";
import type { CodeSizeResult } from "../../bench/moddable-size";


const base = (): BenchReport => ({ date: "", quick: true, machine: { node: "", cpus: 1, cpu: "" }, seconds: {} });

describe("moddable rows", () => {
  it("say why they are skipped when there is no Moddable tree", () => {
    const report = base();
    report.moddable = {
      code: { skipped: "no Moddable host tools built" } as CodeSizeResult,
      runtime: { skipped: "no Moddable SDK: set MODDABLE" } as ModdableRuntimeResult,
    };
    const rows = benchRows(report);
    expect(rows.map((r) => [r.value, r.status])).toEqual([
      ["skipped: no Moddable host tools built", ""],
      ["skipped: no Moddable SDK: set MODDABLE", ""],
    ]);
  });

  it.skipIf(skip !== undefined)("on the real runtime: throughput vs raw and memory above idle, each with its goal", async () => {
    await program(); // built in the background on a fresh clone; a failed build fails here
    const report = await runBench({ only: ["moddable"], moddableSize: 32 * 1024, moddableMemorySize: 32 * 1024, moddableNoCode: true });
    const u = report.moddable!.runtime;
    expect(u.skipped).toBeUndefined();
    expect(u.agent.final).toBe("committed");
    expect(u.raw.ms).toBeGreaterThan(0);
    expect(u.ratio).toBeGreaterThan(0.3);
    const m = u.memory;
    expect(m.idle.samples).toBeGreaterThan(1);
    expect(m.boots.length).toBe(2); // the update boot and the confirm boot
    expect(m.update.slots).toBeGreaterThan(m.raw.slots);
    expect(m.raw.slots).toBeGreaterThan(m.idle.slots);
    expect(m.agentAboveIdle).toBeGreaterThan(m.rawAboveIdle);
    expect(m.update.stack).toBeGreaterThan(0);
    expect(m.update.stack).toBeLessThanOrEqual(m.update.stackSlots);
    // the same update from an encrypted file (issue 31): committed (else moddableRuntime throws), timed, its peak measured
    expect(u.encrypted!.ms).toBeGreaterThan(0);
    expect(u.encrypted!.update.samples).toBeGreaterThan(1);
    const rows = benchRows(report);
    expect(rows.find((r) => r.figure.startsWith("Moddable runtime: encrypted (RSA-3072) vs plain"))?.goal).toBe(">= 0.90 x plain");
    const throughput = rows.find((r) => r.figure.startsWith("Moddable runtime: agent update vs raw"));
    expect(throughput?.goal).toBe(">= 0.90 x raw");
    expect(["ok", "MISSED"]).toContain(throughput?.status);
    const memory = rows.find((r) => r.figure.startsWith("Moddable runtime: agent's peak live XS memory"));
    expect(memory?.goal).toBe("<= 12.0 KiB above idle");
    expect(memory?.status).toBe(m.agentAboveIdle <= 12 * 1024 ? "ok" : "MISSED");
    const own = rows.find((r) => r.figure.startsWith("Moddable runtime: the agent's own peak live XS memory"));
    const ownBytes = m.update.chunks + m.update.slots * 16 - (m.raw.chunks + m.raw.slots * 16);
    expect(own?.goal).toBe("<= 12.0 KiB");
    expect(own?.status).toBe(ownBytes <= 12 * 1024 ? "ok" : "MISSED");
    // by include: the core alone holds less than the full set reporting over MQTT (its connection, the reporter, the outbox's sends)
    const by = m.byInclude!;
    expect(by.core.update.samples).toBeGreaterThan(1);
    expect(by.core.own).toBeLessThan(by.full.own);
    for (const [name, r] of [["the core alone", by.core], ["the core + every feature", by.full]] as const) {
      const row = rows.find((x) => x.figure.startsWith(`Moddable runtime: the agent's own peak live XS memory, ${name}`));
      expect(row?.goal, name).toBe("<= 12.0 KiB");
      expect(row?.status, name).toBe(r.own <= 12 * 1024 ? "ok" : "MISSED");
    }
    // 4 KB TLS records (src/http.ts MAX_FRAGMENT): the raw download holds no 16 KB record buffer
    expect(m.raw.chunks).toBeLessThan(16 * 1024);
  }, BUILD_WAIT_MS + 480_000);
});
