/*
 * The self-test deadline before main runs. Moddable's setup/network calls main only once Wi-Fi
 * has an IP (and SNTP answered): an image that breaks Wi-Fi would never start its self-test, and
 * the idle XS loop feeds the task watchdog, so it would stay PENDING_VERIFY until someone resets
 * it. src/component/setup.ts ("setup/xsota") runs this as a setup module, before setup/network's Wi-Fi is up.
 *
 * Decided from stored state only: when the deadline passes, the running image is still
 * PENDING_VERIFY and no self-test has started this boot (the journal is not "confirming"),
 * the reason is journaled (CONFIRM_NETWORK, which the previous image reports: a network cause,
 * so the release is tried again after networkRetry's backoff, not refused for good) and the chip
 * restarts; the bootloader then aborts the pending image and boots the other slot.
 *
 * The deadline is diagnostics.networkDeadlineMs of uptime, the same bound the agent's self-test
 * puts on the wait for the network when the app signals it (modules/diagnostics.ts runSelfTest):
 * the network is up by then, or the boot is a CONFIRM_NETWORK rollback, whichever side waited.
 * Once main's self-test has started, the network is up (setup/network) and the window from then
 * bounds the rest: a boot confirms or rolls back within networkDeadlineMs + windowMs.
 */
import type { ClockPort, FlashPort, StorePort, SystemPort, TimerId } from "../modules/ports";
import { BootControl } from "../modules/bootctl";
import { OtaState } from "../modules/otadata";
import { JournalStore } from "../modules/journal";

export interface DeadlinePorts {
  flash: FlashPort;
  store: StorePort;
  clock: ClockPort;
  system: SystemPort;
}

/** Arms the deadline when the running image awaits confirmation; returns its timer, else undefined. */
export function armBootDeadline(ports: DeadlinePorts, deadlineMs: number): TimerId | undefined {
  const boot = new BootControl(ports.flash);
  if (boot.runningState() !== OtaState.PENDING_VERIFY) return undefined;
  return ports.clock.setTimeout(() => {
    if (boot.runningState() !== OtaState.PENDING_VERIFY) return;
    const journal = new JournalStore(ports.store);
    const j = journal.load().journal;
    if (j && j.phase === "confirming") return;
    const detail = `no self-test within ${deadlineMs} ms of boot: main never ran (setup/network waits for Wi-Fi)`;
    if (j) journal.save({ ...j, code: "CONFIRM_NETWORK", detail });
    ports.system.log(`xsota: ${detail}; restarting, the bootloader rolls back`);
    ports.system.restart("CONFIRM_NETWORK: no self-test before the deadline");
  }, deadlineMs);
}
