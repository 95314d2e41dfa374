/*
 * An engine runs the device-side firmware (host-sim/engines/firmware.ts, which starts modules/app.ts)
 * for one boot of a simulated device, against ports bound to that device. Two bindings:
 * "node" imports the modules directly; "xs" runs the same modules bundled inside the real XS
 * engine (@agoric/xsnap) and bridges every port call back to these same Ports objects.
 */
import type { Ports } from "../../modules/ports";

export type EngineName = "node" | "xs";

/** JSON-serializable: it crosses into XS. */
export interface FirmwareBoot {
  /** The app configuration (modules/config.ts AppConfig), as JSON-compatible data. */
  config: unknown;
  /** What the simulated firmware image does when booted (embedded in the image by xsota image build). */
  /** `fail-diagnostics@<hardware revision>`: the self-test fails only on boards of that revision. */
  behavior: "healthy" | "fail-diagnostics" | "crash-on-boot" | "hang" | `fail-diagnostics@${string}`;
  /**
   * The network of this boot comes up this many ms after boot (-1: never); absent: at boot. The
   * device's HTTP fails with HTTP_CONNECT until then, and the firmware calls App.networkUp() then.
   */
  networkUpMs?: number;
}

export interface RunningFirmware {
  /** Power off this boot: stop delivering events, release resources. Safe to call twice. */
  stop(): Promise<void>;
}

export interface Engine {
  readonly name: EngineName;
  /** Start the firmware for one boot. Resolves once it is running (not when it finishes). */
  boot(ports: Ports, boot: FirmwareBoot): Promise<RunningFirmware>;
  /** Release the engine (the XS worker). */
  close(): Promise<void>;
}
