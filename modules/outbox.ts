/*
 * The persistent audit outbox: every AuditEvent is stored in NVS before anyone is told about
 * it, and stays there until the broker acknowledges it (FLEET's reporter calls ack/ackUpTo on
 * PUBACK). Bounded: when full, the oldest download progress milestones go first, then the
 * oldest events; a single OUTBOX_FULL note (stored outside the capacity) says how many.
 *
 * Store layout (domain "xsota.outbox", modules/nvs-domains.ts; "outbox" before, moved at open): "next" = next seq; "e<seq>" = one event as JSON;
 * "full" = the OUTBOX_FULL note. Each event is written before "next", so a power cut between
 * the two is repaired on load (next = max(next, highest stored seq + 1)): seq never repeats.
 */
import type { StorePort } from "./ports";
import type { AuditEvent } from "./events";
import { OtaError } from "./errors";
import { DOMAINS, LEGACY_DOMAINS, moveDomain } from "./nvs-domains";

const DOMAIN = DOMAINS.outbox;
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
  /**
   * Seqs of the stored events, ascending, and of those that are download progress milestones
   * (the first to go when full). Only numbers stay in RAM: each event is read from the store when
   * it is sent, so 32 pending events while the broker is away cost 32 numbers, not 32 objects.
   */
  private seqs: number[] = [];
  private milestones: number[] = [];
  /** Seq of the OUTBOX_FULL note, and the count it carries. */
  private noteSeq: number | undefined;
  private droppedCount = 0;
  private next = 1;

  /** Loads what a previous boot left. Throws STORE_* codes from the store. */
  constructor(store: StorePort, options: OutboxOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) throw new RangeError("outbox capacity must be >= 1");
    this.store = store;
    this.capacity = options.capacity;
    moveDomain(store, LEGACY_DOMAINS.outbox, DOMAIN);
    const next = store.get(DOMAIN, "next");
    if (typeof next === "number") this.next = next;
    for (const key of store.keys(DOMAIN)) {
      if (key !== "full" && key[0] !== "e") continue;
      const event = this.read(key);
      if (!event) {
        store.delete(DOMAIN, key);
        continue;
      }
      if (key === "full") {
        this.noteSeq = event.seq;
        this.droppedCount = droppedOf(event);
      } else {
        this.seqs.push(event.seq);
        if (isProgress(event)) this.milestones.push(event.seq);
      }
      if (event.seq >= this.next) this.next = event.seq + 1;
    }
    this.seqs.sort((a, b) => a - b);
  }

  /** The seq the next appended event gets. */
  get nextSeq(): number {
    return this.next;
  }

  /** How many events were dropped since the OUTBOX_FULL note was last acknowledged. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Events (and the OUTBOX_FULL note) not yet acknowledged. */
  get size(): number {
    return this.seqs.length + (this.noteSeq === undefined ? 0 : 1);
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
    while (this.seqs.length >= this.capacity) {
      const gone = this.milestones.length ? this.milestones.shift()! : this.seqs[0]!;
      this.forget(gone);
      this.store.delete(DOMAIN, `e${gone}`);
      drops++;
    }
    this.store.set(DOMAIN, `e${event.seq}`, JSON.stringify(event));
    this.store.set(DOMAIN, "next", event.seq + 1);
    this.next = event.seq + 1;
    this.seqs.push(event.seq);
    if (isProgress(event)) this.milestones.push(event.seq);
    if (drops) this.recordDrops(drops, event);
    return event;
  }

  private recordDrops(drops: number, after: AuditEvent): void {
    const total = this.droppedCount + drops;
    const old = this.noteSeq === undefined ? undefined : this.read("full");
    const note: AuditEvent = old
      ? { ...old, detail: `${total} events dropped` }
      : { seq: this.next, time: after.time, uptime: after.uptime, state: after.state, from: after.from, code: "OUTBOX_FULL", detail: `${total} events dropped` };
    if (!old) {
      this.store.set(DOMAIN, "next", this.next + 1);
      this.next++;
    }
    this.store.set(DOMAIN, "full", JSON.stringify(note));
    this.noteSeq = note.seq;
    this.droppedCount = total;
  }

  /** Seqs not yet acknowledged, ascending (the OUTBOX_FULL note's among them). */
  pendingSeqs(): number[] {
    const all = this.seqs.slice();
    if (this.noteSeq !== undefined) {
      let i = all.length;
      while (i > 0 && all[i - 1]! > this.noteSeq) i--;
      all.splice(i, 0, this.noteSeq);
    }
    return all;
  }

  /** The stored JSON of a pending event (what the reporter publishes), or undefined. */
  json(seq: number): string | undefined {
    const key = seq === this.noteSeq ? "full" : this.seqs.indexOf(seq) >= 0 ? `e${seq}` : undefined;
    const raw = key === undefined ? undefined : this.store.get(DOMAIN, key);
    return typeof raw === "string" ? raw : undefined;
  }

  /** Events not yet acknowledged, oldest first (the OUTBOX_FULL note in seq order), read from the store. */
  pending(): AuditEvent[] {
    const out: AuditEvent[] = [];
    for (const seq of this.pendingSeqs()) {
      const raw = this.json(seq);
      const event = raw === undefined ? undefined : parseEvent(raw);
      if (event) out.push(event);
    }
    return out;
  }

  /** The broker has the event `seq`: forget it. Unknown seqs are ignored. */
  ack(seq: number): void {
    if (this.noteSeq === seq) {
      this.store.delete(DOMAIN, "full");
      this.noteSeq = undefined;
      this.droppedCount = 0;
      return;
    }
    if (!this.forget(seq)) return;
    this.store.delete(DOMAIN, `e${seq}`);
  }

  /** Acknowledge every event with seq <= `seq`. */
  ackUpTo(seq: number): void {
    for (const s of this.pendingSeqs()) if (s <= seq) this.ack(s);
  }

  private forget(seq: number): boolean {
    const i = this.seqs.indexOf(seq);
    if (i < 0) return false;
    this.seqs.splice(i, 1);
    const m = this.milestones.indexOf(seq);
    if (m >= 0) this.milestones.splice(m, 1);
    return true;
  }

  private read(key: string): AuditEvent | undefined {
    const raw = this.store.get(DOMAIN, key);
    return typeof raw === "string" ? parseEvent(raw) : undefined;
  }
}

/** The count an OUTBOX_FULL note's detail starts with ("12 events dropped"). */
function droppedOf(note: AuditEvent): number {
  const n = parseInt(note.detail ?? "", 10);
  return Number.isNaN(n) ? 0 : n;
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
