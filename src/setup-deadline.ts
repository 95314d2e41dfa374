/*
 * A Moddable setup module (manifest.json maps it to "setup/xsota"): xsHosts.c runs every
 * "setup/" module at boot and main only after all of them called done(), and setup/network
 * calls done() only when Wi-Fi is up. This one calls done() at once, having armed the
 * self-test deadline of src/boot-deadline.ts with diagnostics.networkDeadlineMs (the bound on
 * the wait for the network, the same one the agent's self-test uses).
 * Imports are written "../src/x", not "./x": XS resolves them from the module's name
 * "setup/xsota", TypeScript from this file in src/, and both read "../src/x" as src/x.
 */
import config from "mc/config";
import { parseConfig } from "../modules/config";
import { armBootDeadline } from "../src/boot-deadline";
import { EspFlashPort } from "../src/flash";
import { PreferenceStore } from "../src/store";
import { ModdableClock } from "../src/clock";
import { EspSystem } from "../src/system";

export default function setup(done: () => void): void {
  try {
    const deadlineMs = parseConfig(config.ota).diagnostics.networkDeadlineMs;
    armBootDeadline({ flash: new EspFlashPort(), store: new PreferenceStore(), clock: new ModdableClock(), system: new EspSystem() }, deadlineMs);
  } catch (e) {
    // No otadata or a bad configuration: main reports it; nothing to hold the deadline for here.
    trace(`xsota: no boot deadline: ${String(e)}\n`);
  }
  done();
}
