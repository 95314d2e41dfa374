/* The simulator's connection gate (host-sim/lab/fleet-faults.ts): at most `max` open, FIFO, each slot given back once, virtual time held while waiting. */
import { describe, it, expect } from "vitest";
import { ConnectionGate } from "../../host-sim/lab/fleet-faults";
import { VirtualClock } from "../../backend/clock";

describe("ConnectionGate", () => {
  it("opens at most max at once, in order, gives a slot back once, and holds virtual time while any waits", () => {
    const clock = new VirtualClock();
    const gate = new ConnectionGate(2, clock);
    const started: number[] = [];
    const slots = [0, 1, 2, 3, 4].map((i) => gate.enter(() => started.push(i)));
    expect(started).toEqual([0, 1]);
    expect(gate.peakWaiting).toBe(3);
    expect(clock.quiet(1000)).toBe(false); // held: three wait
    slots[0]!.leave();
    slots[0]!.leave(); // twice: still one slot
    expect(started).toEqual([0, 1, 2]);
    slots[3]!.leave(); // gave up while waiting: never starts
    slots[1]!.leave();
    expect(started).toEqual([0, 1, 2, 4]);
    slots[2]!.leave();
    slots[4]!.leave();
    const more: number[] = [];
    gate.enter(() => more.push(1));
    gate.enter(() => more.push(2));
    expect(more).toEqual([1, 2]); // both slots free again
    expect(clock.quiet(1000)).toBe(true); // nothing waits: no hold left
  });
});
