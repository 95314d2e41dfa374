/*
 * Virtual time for the simulator: a 30 s diagnostic window or a 10 min backoff costs
 * milliseconds, while real sockets on loopback still carry real bytes.
 *
 * VirtualClock is the ClockPort binding. TimeDriver runs real I/O and virtual timers
 * together: it jumps to the next virtual timer only when nothing real is going on, that is
 * when no I/O is held open, or when held I/O has shown no activity for `quietMs` of real
 * time (a server that drips bytes on virtual timers, for instance).
 */
import type { ClockPort, TimerId } from "../modules/ports";

interface Timer {
  id: number;
  at: number;
  seq: number;
  callback: () => void;
}

export const DEFAULT_EPOCH = Date.UTC(2026, 0, 1);

const before = (a: Timer, b: Timer) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/**
 * The pending timers: a binary heap on (time, order set), so a fleet's thousands of timers cost
 * O(log n) a set and a fire, not a sort of all of them. A cleared timer leaves the live map at
 * once and is dropped from the heap when it comes to the top, or when cleared timers outnumber
 * the live ones (a stall timer re-armed on every chunk): then the heap is rebuilt from the live.
 */
class TimerQueue {
  private heap: Timer[] = [];
  private live = new Map<number, Timer>();
  private dead = 0;

  get size(): number {
    return this.live.size;
  }

  push(t: Timer): void {
    this.live.set(t.id, t);
    this.siftUp(t, this.heap.push(t) - 1);
  }

  private siftUp(t: Timer, from: number): void {
    const h = this.heap;
    let i = from;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(t, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = t;
  }

  remove(id: number): void {
    if (!this.live.delete(id)) return;
    this.dead++;
    if (this.live.size === 0) {
      this.heap.length = 0;
      this.dead = 0;
    } else if (this.dead > 64 && this.dead > this.live.size) {
      this.heap = [];
      this.dead = 0;
      for (const t of [...this.live.values()].sort((a, b) => a.at - b.at || a.seq - b.seq)) this.heap.push(t); // sorted is a heap
    }
  }

  /** The earliest live timer, or undefined. */
  peek(): Timer | undefined {
    const h = this.heap;
    while (h.length && this.live.get(h[0]!.id) !== h[0]) {
      this.popTop();
      this.dead--;
    }
    return h[0];
  }

  /** Remove and return the earliest live timer. */
  shift(): Timer | undefined {
    const t = this.peek();
    if (t) {
      this.popTop();
      this.live.delete(t.id);
    }
    return t;
  }

  private popTop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (!h.length) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

export class VirtualClock implements ClockPort {
  private t = 0;
  private seq = 0;
  private nextId = 1;
  private timers = new TimerQueue();
  private holds = 0;
  private lastActivity = 0;
  /** Wall-clock epoch at virtual time 0. */
  epoch: number;

  constructor(options: { epoch?: number } = {}) {
    this.epoch = options.epoch ?? DEFAULT_EPOCH;
  }

  now(): number {
    return this.t;
  }

  wallTime(): number {
    return this.epoch + this.t;
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.nextId++;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.timers.push({ id, at: this.t + delay, seq: this.seq++, callback });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.timers.remove(id);
  }

  /** Number of pending timers. */
  pending(): number {
    return this.timers.size;
  }

  /** Virtual time of the next timer, or undefined. */
  nextAt(): number | undefined {
    return this.timers.peek()?.at;
  }

  /** Jump to the next timer and fire it (and any others due at that instant). False if none. */
  step(): boolean {
    const first = this.timers.peek();
    if (!first) return false;
    this.t = Math.max(this.t, first.at);
    for (let next: Timer | undefined = first; next && next.at <= this.t; next = this.timers.peek()) {
      this.timers.shift();
      next.callback();
    }
    return true;
  }

  /** Advance by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let next = this.timers.peek(); next && next.at <= end; next = this.timers.peek()) this.step();
    this.t = end;
  }

  /** Real I/O is in flight: do not jump time while it is active. Returns the release function. */
  hold(): () => void {
    this.holds++;
    this.lastActivity = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.lastActivity = performance.now();
    };
  }

  /** Held I/O made progress (bytes arrived). */
  activity(): void {
    this.lastActivity = performance.now();
  }

  /** True when the driver may jump virtual time now. */
  quiet(quietMs: number): boolean {
    return this.holds === 0 || performance.now() - this.lastActivity >= quietMs;
  }
}

export interface DriveOptions {
  /** Give up after this much virtual time (ms). Default: 24 h. */
  maxVirtualMs?: number;
  /** Real ms of silence on held I/O before time may jump. Default 20. */
  quietMs?: number;
  /** Give up after this much real time (ms). Default 60 000. */
  maxRealMs?: number;
  /** Real work the clock cannot see (an HTTP request awaiting its headers): never jump while true. */
  busy?: () => boolean;
  /** Real ms with no timer and no I/O before the drive is declared stalled. Default 2000. */
  stallMs?: number;
}

const realTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Run the event loop until `done()` is true, jumping virtual time whenever the simulation
 * is quiet. Never jumps while `busy()`, nor in a loop turn that came late: a starved process
 * says nothing about held I/O's silence (its bytes may be waiting in the kernel), so a busy
 * machine cannot fake a stalled server. Throws if virtual or real time runs out, naming which.
 */
export async function driveUntil(clock: VirtualClock, done: () => boolean, options: DriveOptions = {}): Promise<void> {
  const maxVirtual = clock.now() + (options.maxVirtualMs ?? 24 * 3600_000);
  const quietMs = options.quietMs ?? 20;
  const busy = options.busy ?? (() => false);
  const realDeadline = performance.now() + (options.maxRealMs ?? 60_000);
  const stallMs = options.stallMs ?? 2000;
  let stalledSince: number | undefined;
  let lastTurn = performance.now();
  for (;;) {
    // Let promise jobs and already-arrived I/O run first.
    await realTurn();
    await realTurn();
    if (done()) return;
    const now = performance.now();
    const late = now - lastTurn > Math.max(10, quietMs / 2);
    lastTurn = now;
    if (now > realDeadline) throw new Error(`driveUntil: real-time limit reached at virtual t=${clock.now()} ms`);
    if (late || busy() || !clock.quiet(quietMs)) {
      if (late) clock.activity();
      await realSleep(1);
      lastTurn = performance.now();
      continue;
    }
    const next = clock.nextAt();
    if (next === undefined) {
      // Nothing scheduled and nothing held: I/O we don't track (a TLS handshake) may still be
      // under way, or done() will never be true. Wait for something; call it a stall only after
      // a long real silence.
      stalledSince ??= performance.now();
      if (performance.now() - stalledSince > stallMs) throw new Error(`driveUntil: stalled at virtual t=${clock.now()} ms (no timers, no I/O for ${stallMs} ms)`);
      await realSleep(2);
      lastTurn = performance.now();
      continue;
    }
    stalledSince = undefined;
    if (next > maxVirtual) throw new Error(`driveUntil: virtual-time limit reached (next timer at ${next} ms)`);
    clock.step();
    lastTurn = performance.now();
  }
}
