/*
 * The demo's one concession to running many XS devices on one virtual clock (see
 * holdAcrossZeroDelay). The board-specific regression of 1.2.0 is not here: it is in the image
 * itself (behavior "fail-diagnostics@esp32-rev1", resolved by host-sim/engines/firmware.ts against the
 * board's hardware revision), so one release, one image, one SHA-256 fails only on rev1 boards.
 */
import type { Engine, RunningFirmware } from "../../host-sim/engines/engine";
import type { Ports } from "../../modules/ports";
import type { VirtualClock } from "../../backend/clock";

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
