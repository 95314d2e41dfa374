/*
 * Seeded faults for the fleet simulator: a flaky link (HTTP bodies cut part-way, MQTT links
 * dropped) and a PRNG so one seed gives one fleet.
 */
import type { HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "../../modules/ports";

/** mulberry32 */
export function prng(seed: number): () => number {
  let a = seed >>> 0 || 1;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An HttpPort whose requests die with HTTP_CLOSED after a random number of body bytes, with
 * probability `dropRate` per request (the agent resumes with a Range request).
 */
export class FlakyHttp implements HttpPort {
  drops = 0;
  constructor(private readonly inner: HttpPort & { closeAll?(): void }, private readonly random: () => number, private readonly dropRate: number) {}

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
          handler.onError("HTTP_CLOSED", "flaky link dropped the connection");
          return;
        }
        handler.onData(available, (target) => {
          const n = read(target);
          seen += n;
          return n;
        });
      },
      onComplete: () => { if (!dead) handler.onComplete(); },
      onError: (code, detail) => {
        if (dead) return;
        dead = true;
        handler.onError(code, detail);
      },
    };
    req = this.inner.request(options, wrapped);
    return {
      close: () => {
        dead = true;
        req?.close();
      },
    };
  }
}
