/*
 * ClockPort on Moddable: Time.ticks (ms, 32-bit, wraps) made monotonic, Date.now() for wall time
 * (set by SNTP in setup/network before main runs; 0 reported while the clock is still in 1970),
 * and "timer" one-shots behind numeric ids.
 */
import Time from "time";
import Timer from "timer";
import type { ClockPort, TimerId } from "../modules/ports";

/** Earlier than this means SNTP has not set the clock (build/devices/esp32/setup/network.js uses the same cut). */
const CLOCK_SET_AFTER = 1672722071_000;

export class ModdableClock implements ClockPort {
  #last = Time.ticks;
  #elapsed = 0;
  #nextId = 1;
  readonly #timers = new Map<TimerId, Timer>();

  now(): number {
    const ticks = Time.ticks;
    this.#elapsed += (ticks - this.#last) >>> 0; // unsigned difference survives the 32-bit wrap
    this.#last = ticks;
    return this.#elapsed;
  }
  wallTime(): number {
    const t = Date.now();
    return t > CLOCK_SET_AFTER ? t : 0;
  }
  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(
      id,
      Timer.set(() => {
        this.#timers.delete(id);
        callback();
      }, Math.max(0, ms)),
    );
    return id;
  }
  clearTimeout(id: TimerId): void {
    const timer = this.#timers.get(id);
    if (timer === undefined) return;
    this.#timers.delete(id);
    Timer.clear(timer);
  }
}
