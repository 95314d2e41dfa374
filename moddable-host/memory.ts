/*
 * Memory use of the XS machine, sampled (main.ts and idle.ts with --memory): every `everyMs` a full
 * GC, then the live chunk bytes and slots (host.c xs_host_memory); the sample with the most live
 * bytes is the peak (one sample's chunks and slots, never the highest of each from two samples). XS's own high-water marks (garbage included), the heaps' sizes and the stack's high-water
 * mark come with it. Per phase (the agent's last state) the worst sample too, and with --census a
 * breakdown at each phase's new peak: "@census-phase STATE CHUNKS SLOTS", then live slots by XS kind,
 * chunk bytes by kind, and instances grouped by their first property names (what holds the slots).
 * Imports nothing of the agent, so the idle baseline stays agent-free.
 */
import Timer from "timer";
import { memory, census, write } from "./native";

export interface MemoryPeaks {
  /** The sample (after a full GC) with the most live bytes at 16 B a slot: its chunk bytes and slots. */
  chunks: number;
  slots: number;
  /** XS's high-water marks since start (garbage not yet collected included). */
  peakChunks: number;
  peakSlots: number;
  /** What the heaps grew to. */
  chunkHeap: number;
  slotHeap: number;
  /** Stack slots used at most, of `stackSlots`. */
  stack: number;
  stackSlots: number;
  /** sizeof(txSlot) on this host (16 on the ESP32). */
  slotBytes: number;
  /** Stack slots xsre.c's states took from the bottom at most (they fall back to malloc when there is no room). */
  regexStack: number;
  samples: number;
  /** Per phase (what `phase()` last named: the agent's state), the sample with the most live bytes at 16 B a slot. */
  phases: Record<string, { chunks: number; slots: number }>;
}

/** Live bytes at the ESP32's slot size, to pick a phase's worst sample. */
const live = (chunks: number, slots: number) => chunks + slots * 16;

export class MemorySampler {
  readonly #peaks: MemoryPeaks = { chunks: 0, slots: 0, peakChunks: 0, peakSlots: 0, chunkHeap: 0, slotHeap: 0, stack: 0, stackSlots: 0, slotBytes: 0, regexStack: 0, samples: 0, phases: {} };
  #phase = "boot";
  /** census: at each phase's new peak, also print what the live slots and chunks are (host.c xs_host_census). */
  constructor(everyMs: number, private readonly census = false) {
    this.sample();
    Timer.repeat(() => this.sample(), everyMs);
  }
  sample(): MemoryPeaks {
    const [chunks, slots, peakChunks, peakSlots, chunkHeap, slotHeap, stack, stackSlots, slotBytes, regexStack] = memory(true) as [number, number, number, number, number, number, number, number, number, number];
    const p = this.#peaks;
    if (live(chunks, slots) > live(p.chunks, p.slots)) {
      p.chunks = chunks;
      p.slots = slots;
    }
    Object.assign(p, { peakChunks, peakSlots, chunkHeap, slotHeap, stack, stackSlots, slotBytes, regexStack, samples: p.samples + 1 });
    const worst = p.phases[this.#phase];
    if (!worst || live(chunks, slots) > live(worst.chunks, worst.slots)) {
      p.phases[this.#phase] = { chunks, slots };
      if (this.census) {
        write(`@census-phase ${this.#phase} ${chunks} ${slots}\n`);
        census();
      }
    }
    return p;
  }
  /** Samples from now on count for `name` too (main.ts: the state of the agent's last event). */
  phase(name: string): void {
    this.#phase = name;
  }
}
