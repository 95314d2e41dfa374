/*
 * The bench's hardware model: a defect carried by one release that shows only on one board
 * revision. The image is built with behavior "fail-diagnostics" (SIM's image builder embeds
 * it, the bootloader hands it on); this engine wrapper lets it act on the boards of
 * `revision` and boots it as "healthy" on every other revision, as a driver that only
 * trips over rev1's wiring would. One release, one image, one SHA-256: whether it passes its
 * self-test depends on the board it lands on.
 *
 * (The firmware itself cannot express this yet: FirmwareBoot.behavior is a closed union in
 * host-sim/engine.ts. A behavior such as "fail-diagnostics@esp32-rev1", resolved in
 * host-sim/firmware.ts against ports.system.hardwareRevision(), would move it into the image.)
 */
import type { Engine, RunningFirmware } from "../engine";
import type { Ports } from "../../modules/ports";
import type { VirtualClock } from "../clock";

export function hardwareSpecific(inner: Engine, fault: { behavior: "fail-diagnostics"; revision: string }): Engine {
  return {
    name: inner.name,
    boot: (ports, boot) => {
      const shows = boot.behavior !== fault.behavior || ports.system.hardwareRevision() === fault.revision;
      return inner.boot(ports, shows ? boot : { ...boot, behavior: "healthy" });
    },
    close: () => inner.close(),
  };
}

/**
 * Many SimDevices drive one VirtualClock at once here (each device's run() steps it). The XS
 * engine keeps a zero-delay "sentinel" timer armed while XS has work in flight, re-armed on the
 * next setImmediate after it fires; in that gap another device's driver can jump the clock past
 * work XS has not done (stall and self-test timers then fire early: HTTP_TIMEOUT,
 * CONFIRM_TIMEOUT). This wrapper holds the clock across the gap whenever a zero-delay timer
 * fires, so no driver jumps until the engine has re-armed, and while a worker boots.
 */
export function holdAcrossZeroDelay(inner: Engine, clock: VirtualClock): Engine {
  const booted = new Set<Promise<RunningFirmware>>();
  return {
    name: inner.name,
    boot: (ports, boot) => {
      const c = ports.clock;
      const guarded: Ports = {
        ...ports,
        clock: {
          now: () => c.now(),
          wallTime: () => c.wallTime(),
          clearTimeout: (id) => c.clearTimeout(id),
          setTimeout: (cb, ms) => c.setTimeout(Number.isFinite(ms) && ms > 0 ? cb : () => {
            const release = clock.hold();
            setImmediate(() => setImmediate(release));
            cb();
          }, ms),
        },
      };
      // A worker's start (spawn, snapshot, boot crank) is real work too: no jumps meanwhile.
      const release = clock.hold();
      const hold = setInterval(() => clock.activity(), 5);
      const p = inner.boot(guarded, boot).finally(() => {
        clearInterval(hold);
        release();
      });
      booted.add(p);
      return p;
    },
    close: async () => {
      for (const p of booted) await (await p.catch(() => undefined))?.stop();
      // Every worker is stopped above; XsEngine.close() has been seen never to settle after a
      // fleet run (exit 13: nothing left on the event loop), so it gets 2 s.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([inner.close(), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    },
  };
}
