/*
 * Before the restart that ends an update: the application's rebootWhen (AppExtra.rebootWhen, the
 * API's options.rebootWhen) is asked, and while it says no the restart waits, journaled and
 * reported as awaiting-reboot, up to reboot.deadlineMs (then REBOOT_DEADLINE is reported). In the
 * core: it is the app's say, not an operator's control (modules/features.ts).
 */
import type { ClockPort } from "./ports";
import type { AuditEvent } from "./events";
import type { AgentContext } from "./context";
import type { Journal } from "./journal";
import { releaseFields } from "./confirm";

/** Ask `when` and wait while it says no (see above). */
export async function holdBeforeReboot(ctx: AgentContext, j: Journal, when: (() => boolean) | undefined): Promise<void> {
  if (!when) return;
  let ok = false;
  try {
    ok = when();
  } catch {
    ok = true;
  }
  if (ok) return;
  const { deadlineMs, pollMs } = ctx.config.reboot;
  j.phase = "awaiting-reboot";
  ctx.journal.save(j);
  ctx.emit("awaiting-reboot", releaseFields(j, { detail: `the application is busy; restart within ${deadlineMs} ms` }));
  const r = await waitForReboot(ctx.ports.clock, when, deadlineMs, pollMs);
  j.phase = "rebooting";
  ctx.journal.save(j);
  const f: Partial<AuditEvent> = r.deadline ? { code: "REBOOT_DEADLINE", detail: `still busy after ${r.waitedMs} ms` } : { detail: `the application allowed it after ${r.waitedMs} ms` };
  ctx.emit("rebooting", releaseFields(j, f));
}

/**
 * Wait until `acceptable()` (the application's rebootWhen) says yes, polled every `pollMs`, or
 * `deadlineMs` passed. Resolves with the ms waited and whether the deadline cut it short.
 */
export function waitForReboot(clock: ClockPort, acceptable: () => boolean, deadlineMs: number, pollMs: number): Promise<{ waitedMs: number; deadline: boolean }> {
  const start = clock.now();
  return new Promise((resolve) => {
    const poll = () => {
      const waited = clock.now() - start;
      let ok = false;
      try {
        ok = acceptable();
      } catch {
        ok = false; // an application hook that throws does not get to block the restart forever
      }
      if (ok) return resolve({ waitedMs: waited, deadline: false });
      if (waited >= deadlineMs) return resolve({ waitedMs: waited, deadline: true });
      clock.setTimeout(poll, Math.min(pollMs, deadlineMs - waited));
    };
    poll();
  });
}
