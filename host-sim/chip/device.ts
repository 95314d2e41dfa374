/*
 * SimDevice: one simulated ESP32 running our firmware. It owns the chip (SIM's SimChip), the
 * VirtualClock and the Node-side port bindings, and loops:
 *   bootloader.boot(chip) -> engine.boot(ports, {config, behavior}) -> wait for restart(),
 *   a panic, the task watchdog (a hung image), or a power cut -> stop the firmware -> boot again.
 *
 * Crash and hang are modelled here, identically for both engines: a "crash-on-boot" image
 * panics `crashAfterMs` after boot, before its app can confirm; a "hang" image never runs its
 * app and the task watchdog resets the chip after `watchdogMs`. A power cut (SimFlash throws
 * PowerCut from the torn op and from every later one) stops the firmware at once; the device
 * then powers on and boots again.
 */
import type { BootControlPort, CryptoPort, FlashPort, HttpHandler, HttpPort, HttpRequest, MqttPort, Ports, ResetReason, StorePort } from "../../modules/ports";
import type { AuditEvent } from "../../modules/events";
import type { Engine, FirmwareBoot, RunningFirmware } from "../engines/engine";
import { VirtualClock, driveUntil, type DriveOptions } from "../../backend/clock";
import { SimSystem } from "../engines/ports/system";
import { EVENT_PREFIX, PROGRESS_PREFIX } from "../engines/firmware";
import { PANIC_PREFIX } from "../engines/engine-node";
import { nodeCrypto } from "../../backend/crypto";
import { boot as bootloaderBoot } from "./bootloader";
import type { SimChip } from "./chip";

export type Behavior = FirmwareBoot["behavior"];

export interface SimDeviceOptions {
  chip: SimChip;
  engine: Engine;
  http: HttpPort & { closeAll?(): void; readonly waiting?: number };
  config: unknown;
  deviceId: string;
  hardware: string;
  clock?: VirtualClock;
  crypto?: CryptoPort;
  mqtt?: MqttPort;
  chipId?: number;
  /** The bootloader built with CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (host-sim/chip/bootloader.ts; default off). */
  antiRollback?: boolean;
  /** A BootControlPort for each boot's ports (default none: the agent's modules/bootctl.ts over the flash port). */
  bootControl?: (ports: Ports, chip: SimChip) => BootControlPort;
  freeHeap?: number;
  /** A "hang" image is reset by the task watchdog after this long (virtual ms, default 5000). */
  watchdogMs?: number;
  /** A "crash-on-boot" image panics this long after boot (virtual ms, default 50). */
  crashAfterMs?: number;
  /** Reset the chip (panic) whenever the firmware reports one of these states, up to `times` (reboot-loop tests). */
  resetOn?: { state: AuditEvent["state"]; times: number };
  /**
   * When this boot's network comes up (ms after boot, -1 never; undefined: at boot): until then
   * every HTTP request fails with HTTP_CONNECT (a Wi-Fi outage, a broken access point).
   */
  networkUpMs?: (boot: BootRecord) => number | undefined;
  /** Stop booting after this many boots (a reboot loop that never ends is a test failure, not a hang). */
  maxBoots?: number;
  onEvent?(e: AuditEvent): void;
  onProgress?(written: number, total: number): void;
  onLog?(line: string): void;
  onBoot?(info: BootRecord): void;
}

export interface BootRecord {
  n: number;
  slot: number;
  version: string;
  behavior: Behavior;
  reason: ResetReason;
}

interface ResetRequest {
  reason: ResetReason;
  detail: string;
}

export class SimDevice {
  readonly chip: SimChip;
  readonly clock: VirtualClock;
  readonly events: AuditEvent[] = [];
  readonly logs: string[] = [];
  readonly bootRecords: BootRecord[] = [];
  /** Resets, by cause. */
  readonly counters = { boots: 0, restarts: 0, panics: 0, watchdogs: 0, powerCuts: 0 };
  bricked: string | undefined;
  private firmware: RunningFirmware | undefined;
  private pending: ResetRequest | undefined;
  private lastReason: ResetReason = "power-on";
  private timer = 0;
  private resetOnLeft: number;
  private stopped = false;

  constructor(private readonly o: SimDeviceOptions) {
    this.chip = o.chip;
    this.clock = o.clock ?? new VirtualClock();
    this.resetOnLeft = o.resetOn?.times ?? 0;
  }

  /** The image booted last, or undefined before the first boot / when bricked. */
  get running(): BootRecord | undefined {
    return this.bricked ? undefined : this.bootRecords[this.bootRecords.length - 1];
  }

  /** Nothing left to do: no reset pending, no timer scheduled, no I/O in flight (checkIntervalMs 0). */
  get idle(): boolean {
    return !this.resetting && this.clock.pending() === 0 && this.clock.quiet(Number.POSITIVE_INFINITY);
  }

  /** Pull the plug and plug it back in: the next run() boots afresh. */
  powerCycle(): void {
    this.request("power-on", "power cycle");
  }

  /** Write and erase operations of the flash so far. */
  get flashOps(): number {
    return this.chip.flash.ops;
  }

  /** Tear the n-th flash operation from now (SimFlash.cutPowerAt). */
  powerCutAt(n: number, keep?: number): void {
    this.chip.flash.cutPowerAt(n, keep);
  }

  /** A reset is pending (restart, panic, watchdog, power cut) and not yet carried out. */
  get resetting(): boolean {
    return this.pending !== undefined || !this.chip.flash.powered;
  }

  private request(reason: ResetReason, detail: string): void {
    if (this.pending) return;
    this.pending = { reason, detail };
    // Nothing of this boot may happen after the reset: the engine's gate closes now, not at the next turn.
    const fw = this.firmware;
    this.firmware = undefined;
    if (fw) void fw.stop();
  }

  private onLog(line: string): void {
    if (!this.chip.flash.powered) return;
    if (line.startsWith(EVENT_PREFIX)) {
      const e = JSON.parse(line.slice(EVENT_PREFIX.length)) as AuditEvent;
      this.events.push(e);
      this.o.onEvent?.(e);
      if (this.o.resetOn && e.state === this.o.resetOn.state && this.resetOnLeft > 0) {
        this.resetOnLeft--;
        this.request("panic", `injected reset on '${e.state}'`);
      }
      return;
    }
    if (line.startsWith(PROGRESS_PREFIX)) {
      const [w, t] = line.slice(PROGRESS_PREFIX.length).split(" ").map(Number);
      this.o.onProgress?.(w!, t!);
      return;
    }
    if (line.startsWith(PANIC_PREFIX)) {
      this.counters.panics++;
      this.request("panic", line.slice(PANIC_PREFIX.length));
    }
    this.logs.push(line);
    this.o.onLog?.(line);
  }

  /** Run a flash or NVS operation; if it lost power, stop this boot's firmware now (nothing after the cut happens). */
  private watched<T>(op: () => T): T {
    try {
      return op();
    } catch (e) {
      if (!this.chip.flash.powered) this.request("power-on", "power cut");
      throw e;
    }
  }

  private watchFlash(port: FlashPort): FlashPort {
    return {
      open: (label) => {
        const p = this.watched(() => port.open(label));
        return {
          byteLength: p.byteLength,
          blockSize: p.blockSize,
          read: (o, t) => this.watched(() => p.read(o, t)),
          write: (o, d) => this.watched(() => p.write(o, d)),
          eraseBlock: (b) => this.watched(() => p.eraseBlock(b)),
        };
      },
      slots: () => port.slots(),
    };
  }

  private watchStore(store: StorePort): StorePort {
    return {
      get: (d, k) => this.watched(() => store.get(d, k)),
      set: (d, k, v) => this.watched(() => store.set(d, k, v)),
      delete: (d, k) => this.watched(() => store.delete(d, k)),
      keys: (d) => this.watched(() => store.keys(d)),
    };
  }

  /** Boot once: bootloader, then the firmware (or the crash/hang model). */
  private async bootOnce(): Promise<void> {
    const reason = this.lastReason;
    this.pending = undefined;
    let result: ReturnType<typeof bootloaderBoot>;
    try {
      result = bootloaderBoot(this.chip, { chipId: this.o.chipId ?? 0, antiRollback: this.o.antiRollback ?? false });
    } catch (e) {
      if (!this.chip.flash.powered) {
        this.request("power-on", "power cut in the bootloader");
        return;
      }
      throw e;
    }
    this.counters.boots++;
    if (result.kind === "bricked") {
      this.bricked = result.reason;
      return;
    }
    const record: BootRecord = { n: this.counters.boots, slot: result.slot, version: result.appDesc.version, behavior: result.behavior as Behavior, reason };
    this.bootRecords.push(record);
    this.o.onBoot?.(record);
    if (record.behavior === "crash-on-boot") {
      this.timer = this.clock.setTimeout(() => {
        this.counters.panics++;
        this.request("panic", "crash-on-boot");
      }, this.o.crashAfterMs ?? 50);
      return;
    }
    if (record.behavior === "hang") {
      this.timer = this.clock.setTimeout(() => {
        this.counters.watchdogs++;
        this.request("watchdog", "task watchdog: the app never ran");
      }, this.o.watchdogMs ?? 5000);
      return;
    }
    const bootAt = this.clock.now();
    const clock = this.clock;
    const system = new SimSystem({
      deviceId: this.o.deviceId,
      hardware: this.o.hardware,
      chipId: this.o.chipId ?? 0,
      ...(this.o.freeHeap !== undefined ? { freeHeap: this.o.freeHeap } : {}),
      resetReason: reason,
      onRestart: (why) => {
        this.counters.restarts++;
        this.request("software", why);
      },
      onLog: (line) => this.onLog(line),
    });
    const networkUpMs = this.o.networkUpMs?.(record);
    const ports: Ports = {
      flash: this.watchFlash(this.chip.flashPort(result.slot)),
      store: this.watchStore(this.chip.store()),
      http: networkUpMs === undefined ? this.o.http : new LateNetwork(this.o.http, clock, networkUpMs < 0 ? Infinity : bootAt + networkUpMs),
      crypto: this.o.crypto ?? nodeCrypto,
      clock: {
        now: () => clock.now() - bootAt,
        wallTime: () => clock.wallTime(),
        setTimeout: (cb, ms) => clock.setTimeout(cb, ms),
        clearTimeout: (id) => clock.clearTimeout(id),
      },
      system,
    };
    if (this.o.mqtt) ports.mqtt = this.o.mqtt;
    if (this.o.bootControl) ports.boot = this.o.bootControl(ports, this.chip);
    this.firmware = await this.o.engine.boot(ports, { config: this.o.config, behavior: record.behavior, ...(networkUpMs !== undefined ? { networkUpMs } : {}) });
  }

  /** Stop this boot's firmware and carry out the pending reset. */
  private async reset(): Promise<void> {
    const powerCut = !this.chip.flash.powered;
    const req = this.pending ?? { reason: "power-on" as ResetReason, detail: "power cut" };
    this.clock.clearTimeout(this.timer);
    const fw = this.firmware;
    this.firmware = undefined;
    if (fw) await fw.stop();
    this.o.http.closeAll?.();
    if (powerCut) {
      this.counters.powerCuts++;
      this.chip.flash.powerOn();
      this.lastReason = "power-on";
    } else {
      this.lastReason = req.reason;
    }
    this.pending = undefined;
  }

  /**
   * Power on (first call) and run, rebooting as the firmware asks, until `until(device)` is true
   * with no reset pending, the device is bricked, or `maxBoots` is reached. Throws when virtual
   * or real time runs out (driveUntil).
   */
  async run(until: (d: SimDevice) => boolean, options: DriveOptions & { realtime?: boolean } = {}): Promise<void> {
    if (this.stopped) throw new Error("SimDevice is stopped");
    const maxBoots = this.o.maxBoots ?? 50;
    if (this.counters.boots === 0 && !this.firmware && !this.bricked) await this.bootOnce();
    for (;;) {
      if (this.bricked) return;
      const done = () => this.resetting || until(this);
      if (options.realtime) await driveRealtime(this.clock, done, options);
      else await driveDevice(this.clock, done, options, () => (this.o.http.waiting ?? 0) > 0 || (options.busy?.() ?? false));
      if (!this.resetting) return;
      await this.reset();
      if (this.counters.boots >= maxBoots) return;
      await this.bootOnce();
    }
  }

  /** Power off for good: stop the firmware, drop timers and connections. Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    const fw = this.firmware;
    this.firmware = undefined;
    if (fw) await fw.stop();
    this.o.http.closeAll?.();
  }

  /** The last event in the given state, if any. */
  last(state?: AuditEvent["state"]): AuditEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (!state || this.events[i]!.state === state) return this.events[i];
    return undefined;
  }
}

/** HTTP through a network that is up only from `upAt` (virtual ms): before that, HTTP_CONNECT. */
class LateNetwork implements HttpPort {
  constructor(private readonly http: HttpPort, private readonly clock: VirtualClock, private readonly upAt: number) {}
  request(options: Parameters<HttpPort["request"]>[0], handler: HttpHandler): HttpRequest {
    if (this.clock.now() >= this.upAt) return this.http.request(options, handler);
    const id = this.clock.setTimeout(() => handler.onError("HTTP_CONNECT", "network down (simulated)"), 0);
    return { close: () => this.clock.clearTimeout(id) };
  }
}

/** Run virtual timers on the wall clock (xsota device --realtime): time passes as it does outside. */
export async function driveRealtime(clock: VirtualClock, done: () => boolean, options: DriveOptions = {}): Promise<void> {
  const deadline = performance.now() + (options.maxRealMs ?? 60_000);
  let last = performance.now();
  for (;;) {
    // A real turn first: promise jobs drain, so done() never sees a gap between two awaits.
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
    if (done()) return;
    const now = performance.now();
    clock.advance(now - last);
    last = now;
    if (now > deadline) throw new Error(`driveRealtime: real-time limit reached at t=${clock.now()} ms`);
  }
}

/** driveUntil with the device's own notion of busy (a request awaiting its headers). */
export function driveDevice(clock: VirtualClock, done: () => boolean, options: DriveOptions, busy: () => boolean): Promise<void> {
  return driveUntil(clock, done, { ...options, busy });
}
