/*
 * What to do at boot, decided from stored facts with a table (as MCUboot's boot_swap_tables):
 * the running slot's otadata state, the journal's last phase, and whether we run the journal's
 * target. Then the self-test of a PENDING_VERIFY image: pass -> mark VALID, raise the
 * anti-rollback floor, report committed; fail -> mark INVALID (only when the boot-control port
 * says a rollback is possible) and restart, so the bootloader brings the previous image back, whose
 * agent reports the rollback from the journal. Every otadata step goes through ctx.boot
 * (BootControlPort: ESP-IDF's own functions on the ESP32, modules/bootctl.ts elsewhere).
 */
import type { AgentState, AuditEvent } from "./events";
import type { Journal } from "./journal";
import type { AgentContext } from "./context";
import { OtaState } from "./otadata";
import { runSelfTest, builtinChecks, type DiagnosticResult } from "./diagnostics";
import { backoffDelay, seedOf, seededRandom } from "./backoff";
import { codeOf, type ErrorCode } from "./errors";
import { constant } from "./constant";

export type RunningFact = "pending" | "settled";
export type JournalFact = "none" | "in-download" | "switching" | "awaiting" | "done";
export type TargetFact = "target" | "other";
export type BootAction = "self-test" | "report-committed" | "report-rollback" | "resume" | "idle";

interface BootRow {
  readonly running: RunningFact | "*";
  readonly journal: JournalFact | "*";
  readonly target: TargetFact | "*";
  readonly action: BootAction;
}

/** First matching row wins. */
export const BOOT_TABLE: readonly BootRow[] = constant([
  // The bootloader gave this image its one unconfirmed boot.
  { running: "pending", journal: "*", target: "*", action: "self-test" },
  // We were told to reboot into the target (or were self-testing it) and run it, confirmed:
  // a power cut fell between mark-valid and the report.
  { running: "settled", journal: "awaiting", target: "target", action: "report-committed" },
  { running: "settled", journal: "switching", target: "target", action: "report-committed" },
  // We expected the target but run the other image: it crashed, hung, failed its self-test,
  // or lost power before confirming, and the bootloader rolled back.
  { running: "settled", journal: "awaiting", target: "other", action: "report-rollback" },
  // otadata may not have been switched (power cut while installing): verify and switch again.
  { running: "settled", journal: "switching", target: "other", action: "resume" },
  { running: "settled", journal: "in-download", target: "*", action: "resume" },
  { running: "settled", journal: "none", target: "*", action: "idle" },
  { running: "settled", journal: "done", target: "*", action: "idle" },
]);

const JOURNAL_FACT: Readonly<Record<AgentState, JournalFact>> = constant({
  idle: "done", checking: "in-download", downloading: "in-download", verifying: "in-download",
  installing: "switching", rebooting: "awaiting", confirming: "awaiting",
  committed: "done", failed: "done", "rolled-back": "done", refused: "done",
  // A paused or downloaded-and-held release resumes (and is verified again) by the next check.
  paused: "in-download", "awaiting-install": "in-download", "awaiting-reboot": "awaiting", cancelled: "done",
});

export function bootAction(running: RunningFact, journal: JournalFact, target: TargetFact): BootAction {
  for (const row of BOOT_TABLE) {
    if ((row.running === "*" || row.running === running) && (row.journal === "*" || row.journal === journal) && (row.target === "*" || row.target === target)) return row.action;
  }
  return "idle";
}

export interface BootOutcome {
  action: BootAction;
  state: AgentState;
  code?: ErrorCode;
  /** A release rolled back for a network cause is tried again after this long (ms). */
  retryMs?: number;
}

/** Rollback causes outside the image: the release is tried again (networkRetry), not refused for good. */
export const NETWORK_CAUSES: readonly ErrorCode[] = constant(["CONFIRM_NETWORK", "CONFIRM_UNREACHABLE"]);

function facts(ctx: AgentContext, j: Journal | undefined): [RunningFact, JournalFact, TargetFact] {
  const state = ctx.boot.runningState();
  const running: RunningFact = state === OtaState.PENDING_VERIFY ? "pending" : "settled";
  const journal: JournalFact = j ? JOURNAL_FACT[j.phase] : "none";
  const target: TargetFact = j && j.targetSlot === ctx.running.slot && j.to === ctx.running.version ? "target" : "other";
  return [running, journal, target];
}

/**
 * Decide and carry out the boot action. Rejects with FLASH_* / STORE_* from the ports only.
 * A promise chain, not async functions: the self-test runs for up to the diagnostic window, and
 * each suspended async frame would hold RAM on the chip all that time.
 */
export function onBoot(ctx: AgentContext): Promise<BootOutcome> {
  try {
    return decideBoot(ctx);
  } catch (e) {
    return Promise.reject(e);
  }
}

function decideBoot(ctx: AgentContext): Promise<BootOutcome> {
  const loaded = ctx.journal.load();
  if (loaded.corrupt) ctx.emit("idle", { code: "JOURNAL_CORRUPT" });
  const j = loaded.journal;
  const action = bootAction(...facts(ctx, j));
  switch (action) {
    case "self-test":
      return selfTest(ctx, j);
    case "report-committed":
      return Promise.resolve(commit(ctx, j!, action));
    case "report-rollback":
      return Promise.resolve(reportRollback(ctx, j!));
    case "resume":
      return Promise.resolve({ action, state: "idle" });
    case "idle":
      return Promise.resolve({ action, state: "idle" });
  }
}

/**
 * The previous image reports the rollback with its cause. The image's own failure (crash, hang,
 * failed check, heap, self-test timeout) refuses the release for good; a network cause holds it
 * for backoffDelay(n, networkRetry) and tries again, until networkRetry.maxAttempts such rollbacks.
 */
function reportRollback(ctx: AgentContext, j: Journal): BootOutcome {
  const code: ErrorCode = j.code ?? "ROLLBACK_BOOT";
  const out: BootOutcome = { action: "report-rollback", state: "rolled-back", code };
  const journal = ctx.journal;
  let detail = j.detail ?? `running ${ctx.running.version} in slot ${ctx.running.slot}`;
  const network = NETWORK_CAUSES.indexOf(code) >= 0;
  // Counted once: the journal says so before the count is written, so a report repeated after a
  // power cut does not count twice (a cut between the two loses one count: one more retry at most).
  const n = network ? journal.netRollbacks(j.sha256) + (j.netCounted ? 0 : 1) : 0;
  if (network && !j.netCounted) journal.save({ ...j, netCounted: true });
  const retry = ctx.config.networkRetry;
  if (n > 0 && n < retry.maxAttempts) {
    const delay = backoffDelay(n, retry, seededRandom(seedOf(`${ctx.ports.system.deviceId()}:netrb:${n}`)));
    const wall = ctx.ports.clock.wallTime();
    journal.setNetRollbacks(j.sha256, n, wall > 0 ? wall + delay : 0);
    ctx.hold = { sha256: j.sha256, until: ctx.ports.clock.now() + delay };
    // The rolled-back event says it: the hold that follows stays silent.
    journal.alreadySaid(j.sha256, "POLICY_ROLLBACK_BACKOFF");
    out.retryMs = delay;
    detail = `cause: network (${n} of ${retry.maxAttempts}), retried in ${delay} ms; ${detail}`;
  } else {
    if (n > 0) journal.setNetRollbacks(j.sha256, n, 0); // POLICY_ROLLBACK_CAP is reported by the next check
    else journal.alreadySaid(j.sha256, "POLICY_ROLLED_BACK"); // the rolled-back event says it
    journal.markBad(j.sha256);
    detail = `cause: ${n > 0 ? `network, ${n} times: not retried` : "image"}; ${detail}`;
  }
  const done: Journal = { ...j, phase: "rolled-back", code };
  delete done.netCounted;
  // A result goes to the outbox before the journal closes: a power cut between the two
  // repeats the report on the next boot (at least once) instead of losing it.
  ctx.emit("rolled-back", releaseFields(done, { code, detail }));
  journal.save(done);
  return out;
}

export function releaseFields(j: Journal, extra: Partial<AuditEvent> = {}): Partial<AuditEvent> {
  const f: Partial<AuditEvent> = { from: j.from, to: j.to, ...extra };
  if (j.rollout !== undefined) f.rollout = j.rollout;
  return f;
}

function selfTest(ctx: AgentContext, found: Journal | undefined): Promise<BootOutcome> {
  const r = ctx.running;
  const j: Journal = found && found.to === r.version && found.targetSlot === r.slot
    ? { ...found, phase: "confirming" }
    : { phase: "confirming", from: "unknown", fromSlot: -1, to: r.version, secureVersion: r.secureVersion, sha256: "", size: 0, url: "", targetSlot: r.slot, written: 0 };
  delete j.code;
  delete j.detail;
  ctx.journal.save(j);
  ctx.emit("confirming", releaseFields(j));
  const checks = [...builtinChecks(ctx.ports, ctx.config), ...ctx.checks];
  return runSelfTest(checks, ctx.network, ctx.ports.clock, ctx.config.diagnostics).then((result) => selfTested(ctx, j, result));
}

/** The self-test's verdict: commit, keep (nothing to go back to), or mark INVALID and restart. */
function selfTested(ctx: AgentContext, j: Journal, result: DiagnosticResult): BootOutcome {
  if (result.ok) return commit(ctx, j);
  if (!ctx.boot.rollbackPossible()) {
    // Nothing to go back to: keep running this image (IDF's esp_ota_mark_app_invalid_rollback fails the same way),
    // confirmed, so the next boot does not abort it into an unbootable slot.
    ctx.boot.markValid();
    const failed: Journal = { ...j, phase: "failed", code: "CONFIRM_NO_ROLLBACK", detail: result.detail };
    ctx.emit("failed", releaseFields(failed, { code: "CONFIRM_NO_ROLLBACK", detail: `${result.code}: ${result.detail}` }));
    ctx.journal.save(failed);
    return { action: "self-test", state: "failed", code: "CONFIRM_NO_ROLLBACK" };
  }
  // Journal first: the previous image's agent reports this code after the bootloader takes it back.
  ctx.journal.save({ ...j, code: result.code, detail: result.detail });
  ctx.ports.system.log(`self-test failed: ${result.code} ${result.detail}; rolling back`);
  ctx.boot.markInvalid();
  ctx.ports.system.restart(`self-test failed: ${result.code}`);
  return { action: "self-test", state: "rolled-back", code: result.code };
}

function commit(ctx: AgentContext, j: Journal, action: BootAction = "self-test"): BootOutcome {
  try {
    ctx.boot.markValid();
  } catch (e) {
    if (codeOf(e) !== "OTADATA_STATE") throw e;
  }
  // Only ever raised, after the image is VALID: to the signed manifest's secure_version of this
  // release (the journal's), or the image's own when larger (a device with no journal: its image's).
  // An image built without CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK says 0, so the manifest's is the
  // floor that means something (config antiRollback "manifest"); with it on the two are equal
  // (verify.ts secureVersionOk) and the chip's eFuse rises too: v6.0's bootloader raises it when it
  // boots the VALID entry (update_anti_rollback), and esp_ota_mark_app_valid_cancel_rollback does on commit.
  ctx.journal.raiseFloor(Math.max(j.secureVersion, ctx.running.secureVersion));
  const done: Journal = { ...j, phase: "committed" };
  ctx.emit("committed", releaseFields(done));
  ctx.journal.save(done);
  return { action, state: "committed" };
}
