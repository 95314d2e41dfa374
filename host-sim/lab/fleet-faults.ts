/*
 * Seeded faults for the fleet simulator: a flaky link (HTTP bodies cut part-way, MQTT links
 * dropped), a PRNG so one seed gives one fleet, and a memoizing CryptoPort.
 */
import type { CryptoPort, HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "../../modules/ports";
import { seededRandom } from "../../modules/backoff";

/** The agent's own seeded PRNG (mulberry32), with seed 0 mapped to 1. */
export function prng(seed: number): () => number {
  return seededRandom(seed >>> 0 || 1);
}

/**
 * At most `max` HTTPS requests of the whole simulated fleet open at once; the others wait to
 * connect, as behind a congested uplink. One process holds both ends of every simulated
 * connection (the update host runs in it) plus each device's MQTT socket, and a process has
 * 20,000 descriptors here: 10,000 devices downloading at once would need 30,000. While any
 * request waits, virtual time stands still (the wait is the network's, not a timeout's).
 */
export class ConnectionGate {
  private open = 0;
  private readonly queue: (() => void)[] = [];
  private beat: ReturnType<typeof setInterval> | undefined;
  /** The most requests that waited at once. */
  peakWaiting = 0;
  constructor(readonly max: number, private readonly clock?: { hold(): () => void; activity(): void }) {}

  /** Run `start` when a slot is free; the returned function gives the slot back (once). */
  enter(start: () => void): { leave(): void } {
    let state: "waiting" | "in" | "out" = "waiting";
    const release = this.clock?.hold();
    const go = () => {
      if (state !== "waiting") return;
      state = "in";
      release?.();
      this.open++;
      start();
    };
    if (this.open < this.max) go();
    else {
      this.queue.push(go);
      this.peakWaiting = Math.max(this.peakWaiting, this.queue.length);
      if (!this.beat && this.clock) {
        const clock = this.clock;
        this.beat = setInterval(() => clock.activity(), 5);
      }
    }
    return {
      leave: () => {
        if (state === "out") return;
        const was = state;
        state = "out";
        if (was === "waiting") {
          release?.();
          return;
        }
        this.open--;
        while (this.open < this.max && this.queue.length) this.queue.shift()!();
        if (!this.queue.length && this.beat) {
          clearInterval(this.beat);
          this.beat = undefined;
        }
      },
    };
  }
}

/**
 * An HttpPort whose requests die with HTTP_CLOSED after a random number of body bytes, with
 * probability `dropRate` per request (the agent resumes with a Range request); through `gate`
 * when one is given.
 */
export class FlakyHttp implements HttpPort {
  drops = 0;
  constructor(private readonly inner: HttpPort & { closeAll?(): void }, private readonly random: () => number, private readonly dropRate: number, private readonly gate?: ConnectionGate) {}

  closeAll(): void {
    this.inner.closeAll?.();
  }

  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest {
    const drop = this.random() < this.dropRate;
    const after = 512 + Math.floor(this.random() * 16 * 1024);
    let seen = 0;
    let dead = false;
    let req: HttpRequest | undefined;
    const wrapped: HttpHandler = {
      onStatus: (s) => { if (!dead) handler.onStatus(s); },
      onHeader: (n, v) => { if (!dead) handler.onHeader(n, v); },
      onHeadersComplete: () => { if (!dead) handler.onHeadersComplete(); },
      onData: (available, read) => {
        if (dead) return;
        if (drop && seen + available > after) {
          dead = true;
          this.drops++;
          req?.close();
          slot?.leave();
          handler.onError("HTTP_CLOSED", "flaky link dropped the connection");
          return;
        }
        handler.onData(available, (target) => {
          const n = read(target);
          seen += n;
          return n;
        });
      },
      onComplete: () => {
        slot?.leave();
        if (!dead) handler.onComplete();
      },
      onError: (code, detail) => {
        slot?.leave();
        if (dead) return;
        dead = true;
        handler.onError(code, detail);
      },
    };
    let slot: { leave(): void } | undefined;
    if (this.gate) {
      slot = this.gate.enter(() => {
        if (!dead) req = this.inner.request(options, wrapped);
        else slot?.leave();
      });
    } else req = this.inner.request(options, wrapped);
    return {
      close: () => {
        dead = true;
        req?.close();
        slot?.leave();
      },
      pull: () => { if (!dead) req?.pull?.(); },
    };
  }
}

/**
 * A CryptoPort that remembers signature verdicts: a fleet verifies the same few envelopes
 * thousands of times, and verification is a pure function of (key, digest, signature). SHA-256
 * is not cached (every device hashes its own download).
 */
export function memoCrypto(inner: CryptoPort): CryptoPort & { hits: number; misses: number } {
  const seen = new Map<string, boolean>();
  const keyOf = (...parts: Uint8Array[]) => parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString("base64")).join(":");
  const port = {
    hits: 0,
    misses: 0,
    sha256: () => inner.sha256(),
    verifyEcdsaP256(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
      const k = `e:${keyOf(publicKey, digest, signature)}`;
      const hit = seen.get(k);
      if (hit !== undefined) {
        port.hits++;
        return hit;
      }
      port.misses++;
      const ok = inner.verifyEcdsaP256(publicKey, digest, signature);
      seen.set(k, ok);
      return ok;
    },
    verifyRsaPkcs1Sha256(modulus: Uint8Array, exponent: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
      const k = `r:${keyOf(modulus, exponent, digest, signature)}`;
      const hit = seen.get(k);
      if (hit !== undefined) {
        port.hits++;
        return hit;
      }
      port.misses++;
      const ok = inner.verifyRsaPkcs1Sha256(modulus, exponent, digest, signature);
      seen.set(k, ok);
      return ok;
    },
  };
  return port;
}
