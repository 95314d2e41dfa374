/*
 * backend/clock.ts VirtualClock's timer queue against a plain model (every timer in a list,
 * fired by time, then in the order set): random sets, clears and steps; timers set and cleared
 * from inside callbacks; and a stall timer re-armed on every chunk (thousands cleared, few live).
 */
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../backend/clock";

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

describe("VirtualClock timers", () => {
  it("fire by time, then in the order set, as a plain list does, under random sets, clears and steps", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = rng(seed);
      const clock = new VirtualClock();
      let model: { id: number; at: number; n: number }[] = [];
      let fired: number[] = [];
      let n = 0;
      for (let op = 0; op < 5000; op++) {
        const x = r();
        if (x < 0.5) {
          const label = n++;
          const delay = Math.floor(r() * 50) * 10;
          const id = clock.setTimeout(() => fired.push(label), delay);
          model.push({ id, at: clock.now() + delay, n: label });
        } else if (x < 0.8 && model.length) {
          const [m] = model.splice(Math.floor(r() * model.length), 1);
          clock.clearTimeout(m!.id);
        } else {
          expect(clock.pending()).toBe(model.length);
          model.sort((a, b) => a.at - b.at || a.n - b.n);
          expect(clock.nextAt()).toBe(model[0]?.at);
          fired = [];
          expect(clock.step()).toBe(model.length > 0);
          if (!model.length) continue;
          const at = model[0]!.at;
          expect(clock.now()).toBe(at);
          expect(fired, `seed ${seed} op ${op}`).toEqual(model.filter((m) => m.at <= at).map((m) => m.n));
          model = model.filter((m) => m.at > at);
        }
      }
    }
  });

  it("fires zero-delay timers set by a callback in the same step, after those already due; a cleared one never", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    let later = 0;
    clock.setTimeout(() => {
      log.push("a");
      clock.setTimeout(() => log.push("a0"), 0);
      clock.clearTimeout(later);
    }, 10);
    clock.setTimeout(() => log.push("b"), 10);
    later = clock.setTimeout(() => log.push("never"), 20);
    clock.setTimeout(() => log.push("c"), 30);
    clock.step();
    expect(log).toEqual(["a", "b", "a0"]);
    expect(clock.pending()).toBe(1);
    clock.advance(100);
    expect(log).toEqual(["a", "b", "a0", "c"]);
    expect(clock.now()).toBe(110);
    expect(clock.step()).toBe(false);
  });

  it("keeps order and count when a stall timer is re-armed thousands of times", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.setTimeout(() => log.push("rate"), 60_000);
    let stall = 0;
    for (let chunk = 0; chunk < 20_000; chunk++) {
      clock.clearTimeout(stall);
      stall = clock.setTimeout(() => log.push("stall"), 30_000);
      if (chunk % 1000 === 0) clock.advance(1);
      expect(clock.pending()).toBe(2);
    }
    expect(clock.nextAt()).toBe(20 + 30_000);
    clock.advance(60_000);
    expect(log).toEqual(["stall", "rate"]);
    expect(clock.pending()).toBe(0);
  });
});
