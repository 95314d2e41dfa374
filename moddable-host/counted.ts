/*
 * The Linux program's harness around the ports (main.ts): timers and requests counted, so it knows
 * when the device has nothing left to do. Preloaded (moddable-host/preload.ts) like the agent.
 */
import type { ClockPort, HttpHandler, HttpPort, HttpRequest, HttpRequestOptions } from "../modules/ports";
import { write } from "./native";

/**
 * The ports' timers and requests, counted, so the program knows when the device has nothing left
 * to do. Classes and a Map of deadlines, not a closure per timer and six per request: this is the
 * harness, not the agent, and --memory counts whatever it holds as the agent's.
 */
export class CountedClock implements ClockPort {
  /** Timer id -> when it fires; a fired one is past its deadline (no wrapper callback to note it). */
  private readonly deadlines = new Map<number, number>();
  constructor(private readonly clock: ClockPort) {}
  now(): number {
    return this.clock.now();
  }
  wallTime(): number {
    return this.clock.wallTime();
  }
  setTimeout(callback: () => void, ms: number): number {
    const id = this.clock.setTimeout(callback, ms);
    this.deadlines.set(id, this.clock.now() + Math.max(0, ms));
    return id;
  }
  clearTimeout(id: number): void {
    this.deadlines.delete(id);
    this.clock.clearTimeout(id);
  }
  /** A timer not yet due (the loop polls every 100 ms, so one just due fires before the next look). */
  pending(): boolean {
    const now = this.clock.now();
    for (const [id, at] of this.deadlines) {
      if (at >= now) return true;
      this.deadlines.delete(id);
    }
    return false;
  }
}

export class CountedHttp implements HttpPort {
  requests = 0;
  constructor(private readonly http: HttpPort, private readonly clock: ClockPort, private readonly timing: boolean) {}
  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest {
    this.requests++;
    if (this.timing) write(`@time request ${options.url} ${this.clock.now()}\n`);
    const counted = new CountedRequest(this, handler);
    counted.req = this.http.request(options, counted);
    return counted;
  }
}

/** One request's handler and its close, forwarding; the count drops once, at its end or close. */
class CountedRequest implements HttpHandler, HttpRequest {
  req: HttpRequest | undefined;
  private open = true;
  constructor(private readonly owner: CountedHttp, private readonly handler: HttpHandler) {}
  private done(): void {
    if (this.open) this.owner.requests--;
    this.open = false;
  }
  onStatus(s: number): void {
    this.handler.onStatus(s);
  }
  onHeader(name: string, value: string): void {
    this.handler.onHeader(name, value);
  }
  onHeadersComplete(): void {
    this.handler.onHeadersComplete();
  }
  onData(available: number, read: (target: Uint8Array) => number): void {
    this.handler.onData(available, read);
  }
  onComplete(): void {
    this.done();
    this.handler.onComplete();
  }
  onError(code: string, detail: string): void {
    this.done();
    this.handler.onError(code, detail);
  }
  close(): void {
    this.done();
    if (this.req) this.req.close();
  }
  pull(): void {
    if (this.req && this.req.pull) this.req.pull();
  }
}
