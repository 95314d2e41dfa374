/*
 * The XS engine: runs host-sim/engines/firmware.ts (and so modules/) inside the real XS engine, one
 * fresh worker per boot (from the prepared snapshot), with every port bridged back to the
 * Ports the SimDevice built, behind the same gate as the Node engine (engine-node.ts): after
 * stop() nothing of this boot can touch flash, NVS or the network again.
 *
 * Events are delivered one at a time, in order. While any is in flight the engine keeps a
 * zero-delay sentinel timer armed, so a virtual clock never jumps past work XS has not done
 * yet (the Node engine runs the same callbacks synchronously inside the clock's step()).
 */
import type { Engine, FirmwareBoot, RunningFirmware } from "../engine";
import type { Ports, TimerId } from "../../../modules/ports";
import { gatePorts, PANIC_PREFIX } from "../engine-node";
import { Bridge, event, type BridgeStats } from "./bridge";
import { Ev } from "./protocol";
import { prepare, type Prepared } from "./snapshot";
import { DEFAULT_FIRMWARE } from "./bundle";
import { XsWorker, type MeterUsage } from "./worker";

export interface XsEngineOptions {
  /** Module exporting bootFirmware(ports, boot); default host-sim/engines/firmware.ts. */
  firmware?: string;
  /** Per-crank compute limit (XS meter); a crank beyond it ends the worker, reported as a panic. Default 1e9. */
  meteringLimit?: number;
  /** Lines the worker print()s (debugging). */
  onPrint?: (line: string) => void;
  /** Every crank's meter reading (boot, each event). */
  onMeter?: (m: MeterUsage, what: "boot" | "event") => void;
  /**
   * Measuring: at stop(), before the worker goes, run a full GC in it and record the live
   * slots (MeterTotals.liveSlots), then report the boot's totals. Only for benchmarks: a real
   * power cut does not wait for a GC.
   */
  onStop?: (totals: MeterTotals, bridge: BridgeStats) => void;
}

export interface MeterTotals {
  cranks: number;
  /** Sum of the cranks' compute (XS metering index). */
  compute: number;
  /** Highest `allocate` seen (the machine's footprint, bytes). */
  allocate: number;
  /** Slots in use at the last reading. */
  currentHeapCount: number;
  /** Slots still live after a full GC at stop() (only with the onStop option). */
  liveSlots?: number;
}

export interface XsRunningFirmware extends RunningFirmware {
  readonly meter: MeterTotals;
  readonly bridge: BridgeStats;
  /** Facts from inside the worker: lockdown, frozen intrinsics, which host globals remain. */
  probe(): Promise<{ lockdown: boolean; frozenIntrinsics: boolean; hardened: boolean; absent: string[]; pendingTimers: number; pendingHttp: number }>;
  /** Full GC in the worker, then a meter reading (live slots). */
  collect(): Promise<MeterUsage>;
  /** Resolves when no event is queued or running. */
  idle(): Promise<void>;
}

export interface XsEngine extends Engine {
  readonly name: "xs";
  /** The prepared snapshot (bundle size, lockdown and bundle meters). */
  prepared(): Promise<Prepared>;
  boot(ports: Ports, boot: FirmwareBoot): Promise<XsRunningFirmware>;
}

export function newTotals(): MeterTotals {
  return { cranks: 0, compute: 0, allocate: 0, currentHeapCount: 0 };
}

function add(t: MeterTotals, m: MeterUsage): void {
  t.cranks++;
  t.compute += m.compute;
  t.allocate = Math.max(t.allocate, m.allocate);
  t.currentHeapCount = m.currentHeapCount;
}

export function createXsEngine(options: XsEngineOptions = {}): XsEngine {
  const firmware = options.firmware ?? DEFAULT_FIRMWARE;
  const live = new Set<XsRunningFirmware>();
  // A spare worker, started from the snapshot while the current boot runs, so that the next
  // boot does not wait for a process to start and load 3 MB (a power-cut sweep boots hundreds).
  let spare: XsWorker | undefined;
  const spawnWorker = (snapshot: string) =>
    new XsWorker({ name: "xsota-device", snapshot, meteringLimit: options.meteringLimit ?? 1e9, ...(options.onPrint ? { onPrint: options.onPrint } : {}) });
  const takeWorker = (snapshot: string): XsWorker => {
    const w = spare && spare.alive ? spare : spawnWorker(snapshot);
    w.keepAlive(true);
    spare = spawnWorker(snapshot);
    spare.keepAlive(false);
    return w;
  };
  return {
    name: "xs",
    prepared: () => prepare(firmware),
    async boot(ports: Ports, boot: FirmwareBoot): Promise<XsRunningFirmware> {
      const prepared = await prepare(firmware);
      const panic = (message: string) => ports.system.log(PANIC_PREFIX + message);
      const gate = gatePorts(ports, (e) => panic(e instanceof Error ? e.message : String(e)));
      const meter = newTotals();
      let stopped = false;
      let inFlight = 0;
      let sentinel: TimerId | 0 = 0;
      let idleWaiters: Array<() => void> = [];
      const armSentinel = () => {
        if (sentinel || stopped || inFlight === 0) return;
        sentinel = ports.clock.setTimeout(() => {
          sentinel = 0;
          // Re-arm after this clock step, not inside it (a zero-delay timer armed in step() fires in the same step).
          setImmediate(armSentinel);
        }, 0);
      };
      const settle = () => {
        inFlight--;
        if (inFlight === 0) {
          if (sentinel) ports.clock.clearTimeout(sentinel);
          sentinel = 0;
          const w = idleWaiters;
          idleWaiters = [];
          for (const f of w) f();
        }
      };
      const deliver = (frame: Uint8Array) => {
        if (stopped) return;
        inFlight++;
        armSentinel();
        worker.command(frame).then(
          (r) => {
            add(meter, r.meter);
            options.onMeter?.(r.meter, "event");
            settle();
          },
          (e: Error) => {
            settle();
            if (!stopped) panic(e.message);
          },
        );
      };
      const bridge = new Bridge(gate.ports, deliver, (message) => {
        if (!gate.dead) panic(message);
      });
      const worker = takeWorker(prepared.snapshot);
      worker.handleCommand = (request) => bridge.handle(request);
      void worker.exit.then(() => {
        if (!stopped) panic(`XS worker ended unexpectedly`);
      });
      try {
        const r = await worker.evaluate(`xsotaBoot(${JSON.stringify(JSON.stringify(boot))}, ${ports.mqtt ? "true" : "false"})`);
        add(meter, r.meter);
        options.onMeter?.(r.meter, "boot");
      } catch (e) {
        if (!stopped) panic((e as Error).message);
      }
      const running: XsRunningFirmware = {
        meter,
        bridge: bridge.stats,
        async stop() {
          if (stopped) return;
          stopped = true;
          live.delete(running);
          if (sentinel) ports.clock.clearTimeout(sentinel);
          sentinel = 0;
          gate.kill();
          if (options.onStop) {
            if (worker.alive) {
              try {
                const r = await worker.command(event(Ev.GC));
                meter.liveSlots = r.meter.currentHeapCount;
                meter.allocate = Math.max(meter.allocate, r.meter.allocate);
              } catch {
                // the worker is gone: no reading
              }
            }
            options.onStop(meter, bridge.stats);
          }
          // SIGKILL, as a power cut; the gate is already dead, so waiting for the exit buys nothing.
          void worker.terminate();
          const w = idleWaiters;
          idleWaiters = [];
          for (const f of w) f();
        },
        async probe() {
          const r = await worker.command(event(Ev.PROBE));
          return JSON.parse(Buffer.from(r.reply).toString("utf8"));
        },
        async collect() {
          const r = await worker.command(event(Ev.GC));
          return r.meter;
        },
        idle() {
          if (inFlight === 0 || stopped) return Promise.resolve();
          return new Promise<void>((resolve) => idleWaiters.push(resolve));
        },
      };
      live.add(running);
      return running;
    },
    async close() {
      await Promise.all([...live].map((r) => r.stop()));
      const s = spare;
      spare = undefined;
      await s?.terminate();
    },
  };
}
