/*
 * --app: the program runs an app built with the component (host-sim/engines/moddable/build.ts
 * buildAppProgram maps the app's own main to "main") instead of the simulator's firmware. The app
 * imports "xsota" and starts it as it does on the devkit; "xsota/platform" (platform/ports.ts) gives it
 * the Linux ports, and this harness ends the process once the agent has nothing left to do
 * (no timer of its ports pending, no request in flight), as main.ts does for the firmware.
 */
import Timer from "timer";
import { harness } from "xsota/platform";
import { exit, write } from "./native";
import { IDLE_STATUS, PANIC_STATUS } from "./system";

/** Idle = nothing pending for this many consecutive 100 ms polls. */
const QUIET_POLLS = 3;
/** The app's main module, named by the generated manifest. */
const APP_MAIN = "main";

export function runApp(): void {
  import(APP_MAIN).then(
    (ns: { default?: unknown }) => {
      if (typeof ns.default === "function") (ns.default as () => void)();
      let quiet = 0;
      Timer.repeat(() => {
        const busy = (harness.clock?.pending() ?? false) || (harness.http?.requests ?? 0) > 0;
        quiet = busy ? 0 : quiet + 1;
        if (quiet < QUIET_POLLS) return;
        write("@idle\n");
        exit(IDLE_STATUS);
      }, 100);
    },
    (e: unknown) => {
      write(`@panic app ${String(e)}\n`);
      exit(PANIC_STATUS);
    },
  );
}
