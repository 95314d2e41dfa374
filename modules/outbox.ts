/*
 * The persistent audit outbox: every AuditEvent is stored in NVS before anyone is told about
 * it, and stays there until the broker acknowledges it (FLEET's reporter calls ack/ackUpTo on
 * PUBACK). Bounded: when full, the oldest download progress milestones go first, then the
 * oldest events; a single OUTBOX_FULL note (stored outside the capacity) says how many.
 *
 * Store layout (domain "outbox"): "next" = next seq; "e<seq>" = one event as JSON;
 * "full" = the OUTBOX_FULL note. Each event is written before "next", so a power cut between
 * the two is repaired on load (next = max(next, highest stored seq + 1)): seq never repeats.
 */
import type { StorePort } from "./ports";
import type { AuditEvent } from "./events";
import { OtaError } from "./errors";

const DOMAIN = "outbox";
const MAX_DETAIL = 200;

export interface OutboxOptions {
  /** Maximum stored events (not counting the OUTBOX_FULL note). */
  capacity: number;
}

function isProgress(e: AuditEvent): boolean {
  return e.state === "downloading" && e.progress !== undefined && e.progress > 0;
}

export class Outbox {
  private readonly store: StorePort;
  private readonly capacity: number;
  private events: AuditEvent[] = [];
  private note: AuditEvent | undefined;
  private next = 1;

  /** Loads what a previous boot left. Throws STORE_* codes from the store. */
  constructor(store: StorePort, options: OutboxOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) throw new RangeError("outbox capacity must be >= 1");
    this.store = store;
    this.capacity = options.capacity;
    const next = store.get(DOMAIN, "next");
    if (typeof next === "number") this.next = next;
    for (const key of store.keys(DOMAIN)) {
      if (key !== "full" && key[0] !== "e") continue;
      const raw = store.get(DOMAIN, key);
      const event = typeof raw === "string" ? parseEvent(raw) : undefined;
      if (!event) {
        store.delete(DOMAIN, key);
        continue;
      }
      if (key === "full") this.note = event;
      else this.events.push(event);
      if (event.seq >= this.next) this.next = event.seq + 1;
    }
    this.events.sort((a, b) => a.seq - b.seq);
  }

  /** The seq the next appended event gets. */
  get nextSeq(): number {
    return this.next;
  }

  /** How many events were dropped since the OUTBOX_FULL note was last acknowledged. */
  get dropped(): number {
    const m = this.note?.detail ? /^(\d+)/.exec(this.note.detail) : null;
    return m ? Number(m[1]) : 0;
  }

  /**
   * Store an event with the next seq and return it. Drops the oldest progress milestone (else
   * the oldest event) when full, and records that in the OUTBOX_FULL note.
   * Throws STORE_* codes from the store (the event is then not stored).
   */
  append(e: Omit<AuditEvent, "seq">): AuditEvent {
    const event: AuditEvent = { ...e, seq: this.next };
    if (event.detail !== undefined && event.detail.length > MAX_DETAIL) event.detail = event.detail.slice(0, MAX_DETAIL);
    let drops = 0;
    while (this.events.length >= this.capacity) {
      let victim = this.events.findIndex(isProgress);
      if (victim < 0) victim = 0;
      const [gone] = this.events.splice(victim, 1);
      this.store.delete(DOMAIN, `e${gone!.seq}`);
      drops++;
    }
    this.store.set(DOMAIN, `e${event.seq}`, JSON.stringify(event));
    this.store.set(DOMAIN, "next", event.seq + 1);
    this.next = event.seq + 1;
    this.events.push(event);
    if (drops) this.recordDrops(drops, event);
    return event;
  }

  private recordDrops(drops: number, after: AuditEvent): void {
    const total = this.dropped + drops;
    const note: AuditEvent = this.note
      ? { ...this.note, detail: `${total} events dropped` }
      : { seq: this.next, time: after.time, uptime: after.uptime, state: after.state, from: after.from, code: "OUTBOX_FULL", detail: `${total} events dropped` };
    if (!this.note) {
      this.store.set(DOMAIN, "next", this.next + 1);
      this.next++;
    }
    this.store.set(DOMAIN, "full", JSON.stringify(note));
    this.note = note;
  }

  /** Events not yet acknowledged, oldest first (the OUTBOX_FULL note in seq order). */
  pending(): AuditEvent[] {
    const all = this.note ? [...this.events, this.note] : [...this.events];
    return all.sort((a, b) => a.seq - b.seq);
  }

  /** The broker has the event `seq`: forget it. Unknown seqs are ignored. */
  ack(seq: number): void {
    if (this.note && this.note.seq === seq) {
      this.store.delete(DOMAIN, "full");
      this.note = undefined;
      return;
    }
    const i = this.events.findIndex((e) => e.seq === seq);
    if (i < 0) return;
    this.events.splice(i, 1);
    this.store.delete(DOMAIN, `e${seq}`);
  }

  /** Acknowledge every event with seq <= `seq`. */
  ackUpTo(seq: number): void {
    for (const e of this.pending()) if (e.seq <= seq) this.ack(e.seq);
  }
}

function parseEvent(raw: string): AuditEvent | undefined {
  try {
    const e = JSON.parse(raw) as AuditEvent;
    if (typeof e !== "object" || e === null || typeof e.seq !== "number" || typeof e.state !== "string") return undefined;
    return e;
  } catch {
    return undefined;
  }
}

/** For callers that need to name the condition (the reporter, the CLI). */
export function outboxFull(dropped: number): OtaError {
  return new OtaError("OUTBOX_FULL", `${dropped} events dropped`);
}
