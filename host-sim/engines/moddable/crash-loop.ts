/*
 * Run scenarios on a build of the Linux program again and again, and count how its processes
 * ended: killed by a signal (SIGSEGV...), AddressSanitizer reports (an ASan build), other failures.
 * For crashes that only show up under load (a socket message late: moddable-host/socket/modSocket.c).
 *
 *   node --import tsx host-sim/engines/moddable/crash-loop.ts PROGRAM RUNS [SCENARIO...]   (default: happy)
 *
 * Each run boots a fresh flash file in a new temporary directory (named on a crash); with
 * `ulimit -c unlimited` a crashed process leaves its core in the current directory.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, FACTORY } from "../../lab/lab";
import { scenarios, stageScenario, type Scenario } from "../../lab/scenarios";
import { ModdableDevice } from "./driver";
import { FAST } from "./scenarios";

async function main(): Promise<void> {
  const [program, runsArg, ...names] = process.argv.slice(2);
  if (!program || !runsArg) throw new Error("usage: crash-loop.ts PROGRAM RUNS [SCENARIO...]");
  const list: Scenario[] = (names.length ? names : ["happy"]).map((n) => {
    const s = scenarios.find((x) => x.name === n);
    if (!s) throw new Error(`no scenario ${n}`);
    return s;
  });
  const lab = await Lab.create();
  let runs = 0, crashes = 0, other = 0, asanRuns = 0, asanErrors = 0;
  const t0 = Date.now();
  for (let i = 0; i < Number(runsArg); i++) {
    for (const s of list) {
      const { dir, config } = stageScenario(s, lab, FAST, {});
      const work = mkdtempSync(join(tmpdir(), `crash-loop-${s.name}-`));
      const flashPath = join(work, "flash.bin");
      lab.chip(s.factory ?? FACTORY).save(flashPath);
      const device = new ModdableDevice({
        program, flashPath, config, caPem: s.wrongCa ? lab.otherCa.caCertPem : lab.ca.caCertPem,
        deviceId: "240ac4000001", hardware: s.device?.hardware ?? "esp32-rev3",
      });
      runs++;
      try {
        await device.run();
        for (let k = 1; k < s.releases.length; k++) {
          lab.publish(dir, s.releases[k]!);
          device.powerCycle();
          await device.run();
        }
      } catch (e) {
        if (device.logs.some((l) => l.startsWith("the program was killed by"))) {
          crashes++;
          console.log(`CRASH run ${runs} ${s.name} ${work}:\n   ${device.logs.slice(-6).join("\n   ")}`);
        } else {
          other++;
          console.log(`FAIL run ${runs} ${s.name}: ${String(e).slice(0, 300)}`);
        }
      }
      const asan = device.logs.filter((l) => l.includes("ERROR: AddressSanitizer")).length;
      if (asan) {
        asanRuns++;
        asanErrors += asan;
        const frames = device.logs.filter((l) => / {4}#0 /.test(l)).map((l) => l.replace(/.* in /, "")).slice(0, 4);
        console.log(`ASAN run ${runs} ${s.name}: ${asan} reports; first frames: ${frames.join(" | ")}`);
      }
    }
  }
  console.log(`RESULT runs=${runs} crashes=${crashes} otherFailures=${other} asanRuns=${asanRuns} asanReports=${asanErrors} in ${(Date.now() - t0) / 1000} s`);
  await lab.close();
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e);
  process.exit(1);
});
