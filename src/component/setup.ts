/*
 * A Moddable setup module (manifest.json maps it to "setup/xsota"): xsHosts.c runs every
 * "setup/" module at boot and main only after all of them called done(), and setup/network
 * calls done() only when Wi-Fi is up. This one calls done() at once, having armed the
 * self-test deadline of src/boot-deadline.ts with diagnostics.networkDeadlineMs (the bound on the
 * wait for the network, the same one the agent's self-test uses).
 *
 * The bound is read from the manifest's config.xsota.diagnostics (what main's options.config
 * overrides is not known yet: main has not run). Imports are written "xsota/...": XS resolves a
 * relative import from the module's name "setup/xsota", TypeScript from this file's folder.
 */
import config from "mc/config";
import { DEFAULTS } from "xsota/modules/config";
import { armBootDeadline } from "xsota/src/boot-deadline";
import { EspFlashPort } from "xsota/src/flash";
import { PreferenceStore } from "xsota/src/store";
import { ModdableClock } from "xsota/src/clock";
import { EspSystem } from "xsota/src/system";

/** config.xsota.diagnostics.networkDeadlineMs when it is a positive number, else the default. */
function deadlineMs(): number {
  const xsota = config.xsota as { diagnostics?: { networkDeadlineMs?: unknown } } | undefined;
  const w = xsota?.diagnostics?.networkDeadlineMs;
  return typeof w === "number" && w > 0 ? w : DEFAULTS.networkDeadlineMs;
}

export default function setup(done: () => void): void {
  try {
    armBootDeadline({ flash: new EspFlashPort(), store: new PreferenceStore(), clock: new ModdableClock(), system: new EspSystem() }, deadlineMs());
  } catch (e) {
    // No otadata: start() reports it; nothing to hold the deadline for here.
    trace(`xsota: no boot deadline: ${String(e)}\n`);
  }
  done();
}
