/*
 * Self-diagnostics after an update: pluggable checks, each with its own timeout, the whole
 * run bounded by the diagnostic window (30 s of device time by default). A check fails by
 * returning false, throwing or rejecting; a check that does not settle in time fails with
 * CONFIRM_TIMEOUT, as does a run that outlasts the window.
 *
 * The self-test (runSelfTest) runs two groups side by side: the image's own checks (heap, the
 * application's) within the window from boot, and the network checks (network, update-host,
 * broker, and any check marked `network`) within a window that starts when the network is up
 * (NetworkSignal), which it waits for up to diagnostics.networkDeadlineMs of uptime. A failure
 * of the first group is the image's (CONFIRM_DIAGNOSTICS / CONFIRM_TIMEOUT) and wins; one of the
 * second is outside the image: CONFIRM_NETWORK (never up) or CONFIRM_UNREACHABLE.
 */
import type { ClockPort, HttpPort, MqttConnectOptions, MqttPort, SystemPort } from "./ports";
import { brokerOptions, type AppConfig, type DiagnosticsConfig } from "./config";
import { OtaError, codeOf, type ErrorCode } from "./errors";

export interface DiagnosticCheck {
  name: string;
  /** Per-check timeout (ms); default config.diagnostics.checkTimeoutMs. */
  timeoutMs?: number;
  /** Needs the network: runs in the window that starts when the network is up; its failure is CONFIRM_UNREACHABLE. */
  network?: boolean;
  run(): boolean | void | Promise<boolean | void>;
}

export type DiagnosticResult = { ok: true } | { ok: false; code: ErrorCode; check: string; detail: string };

/**
 * Run `checks` in order within `windowMs`. Raises nothing: the result carries the code.
 * One promise for the whole run, settled by a small state machine (Diagnostics), not an async
 * loop with a timeout promise per check: what is pending is held in RAM on the chip, and the
 * self-test runs while the new image's network and TLS are up.
 */
export function runDiagnostics(checks: readonly DiagnosticCheck[], clock: ClockPort, windowMs: number, checkTimeoutMs: number): Promise<DiagnosticResult> {
  return new Promise<DiagnosticResult>((resolve) => new Diagnostics(checks, clock, windowMs, checkTimeoutMs, new Settle(resolve)).next());
}

/** Where a run's result goes. */
interface RunSink {
  ended(run: Diagnostics, r: DiagnosticResult): void;
}

class Settle implements RunSink {
  constructor(private readonly resolve: (r: DiagnosticResult) => void) {}
  ended(_run: Diagnostics, r: DiagnosticResult): void {
    this.resolve(r);
  }
}

class Diagnostics {
  private readonly deadline: number;
  private index = -1;
  private timer = 0;
  private done = false;

  constructor(
    private readonly checks: readonly DiagnosticCheck[],
    private readonly clock: ClockPort,
    private readonly windowMs: number,
    private readonly checkTimeoutMs: number,
    private readonly sink: RunSink,
  ) {
    this.deadline = clock.now() + windowMs;
  }

  /** The next check (from a microtask: a check never runs inside the previous one's callback). */
  next(): void {
    const i = ++this.index;
    const check = this.checks[i];
    if (!check) return this.end({ ok: true });
    const left = this.deadline - this.clock.now();
    if (left <= 0) return this.end({ ok: false, code: "CONFIRM_TIMEOUT", check: check.name, detail: `window of ${this.windowMs} ms used up` });
    const limit = Math.min(left, check.timeoutMs ?? this.checkTimeoutMs);
    this.timer = this.clock.setTimeout(() => {
      if (this.index === i) this.failed(i, new OtaError("CONFIRM_TIMEOUT", `check '${check.name}' did not finish in ${limit} ms`));
    }, limit);
    Promise.resolve()
      .then(() => check.run())
      .then((ok) => this.passed(i, ok), (e: unknown) => this.failed(i, e));
  }

  private passed(i: number, ok: boolean | void): void {
    if (this.done || this.index !== i) return;
    this.clock.clearTimeout(this.timer);
    const check = this.checks[i]!;
    if (ok === false) return this.end({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: check.name, detail: `check '${check.name}' failed` });
    this.next();
  }

  private failed(i: number, e: unknown): void {
    if (this.done || this.index !== i) return;
    this.clock.clearTimeout(this.timer);
    const code = codeOf(e) === "CONFIRM_TIMEOUT" ? "CONFIRM_TIMEOUT" : "CONFIRM_DIAGNOSTICS";
    this.end({ ok: false, code, check: this.checks[i]!.name, detail: e instanceof Error ? e.message : String(e) });
  }

  private end(r: DiagnosticResult): void {
    if (this.done) return;
    this.done = true;
    this.sink.ended(this, r);
  }

  /** Stop without a result (the self-test ended on the other group). */
  cancel(): void {
    this.done = true;
    this.clock.clearTimeout(this.timer);
  }
}

/** Told once when the network comes up. */
export interface NetworkWaiter {
  networkReady(): void;
}

/**
 * Whether the network is up, and since when (uptime ms). Up from the start unless the app brings
 * the network up itself (diagnostics.waitForNetwork, AppExtra.network "app"): then up at signal().
 */
export class NetworkSignal {
  upAt = -1;
  private waiter: NetworkWaiter | undefined;

  constructor(private readonly clock: ClockPort, waitForIt: boolean) {
    if (!waitForIt) this.upAt = clock.now();
  }

  get up(): boolean {
    return this.upAt >= 0;
  }

  /** The network is up (idempotent). */
  signal(): void {
    if (this.upAt >= 0) return;
    this.upAt = this.clock.now();
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.networkReady();
  }

  /** One waiter at a time; undefined stops waiting. */
  wait(w: NetworkWaiter | undefined): void {
    this.waiter = w;
  }
}

/**
 * The self-test: `checks` split into the image's own and the network ones (see the top of this
 * file). Raises nothing: the result carries the code. `d.windowMs` bounds each group from its own
 * start (boot, network up), `d.networkDeadlineMs` the wait for the network (uptime).
 */
export function runSelfTest(checks: readonly DiagnosticCheck[], network: NetworkSignal, clock: ClockPort, d: DiagnosticsConfig): Promise<DiagnosticResult> {
  return new Promise<DiagnosticResult>((resolve) => new SelfTest(checks, network, clock, d, resolve).start());
}

class SelfTest implements RunSink, NetworkWaiter {
  private readonly own: Diagnostics;
  private net: Diagnostics | undefined;
  private ownResult: DiagnosticResult | undefined;
  private netResult: DiagnosticResult | undefined;
  private readonly netChecks: DiagnosticCheck[] = [];
  private timer = 0;
  private done = false;

  constructor(
    checks: readonly DiagnosticCheck[],
    private readonly network: NetworkSignal,
    private readonly clock: ClockPort,
    private readonly d: DiagnosticsConfig,
    private readonly resolve: (r: DiagnosticResult) => void,
  ) {
    const own: DiagnosticCheck[] = [];
    for (const c of checks) (c.network ? this.netChecks : own).push(c);
    this.own = new Diagnostics(own, clock, d.windowMs, d.checkTimeoutMs, this);
  }

  start(): void {
    this.own.next();
    if (this.done) return;
    if (this.network.up) return this.networkReady();
    const left = this.d.networkDeadlineMs - this.clock.now();
    if (left <= 0) return this.networkLate();
    this.network.wait(this);
    this.timer = this.clock.setTimeout(() => this.networkLate(), left);
  }

  networkReady(): void {
    if (this.done || this.net) return;
    this.clock.clearTimeout(this.timer);
    // The network checks' window starts when the network came up.
    const window = Math.max(1, this.network.upAt + this.d.windowMs - this.clock.now());
    this.net = new Diagnostics(this.netChecks, this.clock, window, this.d.checkTimeoutMs, this);
    this.net.next();
  }

  private networkLate(): void {
    if (this.done || this.net || this.netResult) return;
    this.network.wait(undefined);
    this.settled({ ok: false, code: "CONFIRM_NETWORK", check: "network", detail: `network not up within ${this.d.networkDeadlineMs} ms of boot` }, false);
  }

  ended(run: Diagnostics, r: DiagnosticResult): void {
    if (run === this.own) return this.settled(r, true);
    // The check's own code stays in the detail (an OtaError's message starts with it already).
    this.settled(r.ok ? r : { ok: false, code: "CONFIRM_UNREACHABLE", check: r.check, detail: r.detail.indexOf(r.code) === 0 ? r.detail : `${r.code}: ${r.detail}` }, false);
  }

  /** The image's failure ends the self-test at once; the network's waits for the image's checks (which may name the image instead). */
  private settled(r: DiagnosticResult, own: boolean): void {
    if (this.done) return;
    if (own) this.ownResult = r;
    else this.netResult = r;
    const o = this.ownResult;
    if (o && !o.ok) return this.finish(o);
    if (o && this.netResult) this.finish(this.netResult);
  }

  private finish(r: DiagnosticResult): void {
    this.done = true;
    this.clock.clearTimeout(this.timer);
    this.network.wait(undefined);
    this.own.cancel();
    if (this.net) this.net.cancel();
    this.resolve(r);
  }
}

/** A HEAD of the manifest URL: any HTTP answer proves the network; a 2xx/3xx proves the host. */
function probeHost(http: HttpPort, url: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let status = 0;
    let done = false;
    const req = http.request({ url, method: "HEAD" }, {
      onStatus: (s) => { status = s; },
      onHeader: () => {},
      onHeadersComplete: () => {},
      onData: (_n, read) => { const sink = new Uint8Array(256); while (read(sink) > 0); },
      onComplete: () => { if (!done) { done = true; resolve(status); } },
      onError: (code, detail) => { if (!done) { done = true; reject(new OtaError(code === "HTTP_TLS" ? "HTTP_TLS" : "HTTP_CONNECT", detail)); } },
    });
    void req;
  });
}

function brokerUp(mqtt: MqttPort, options: MqttConnectOptions): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let client: { close(): void } | undefined;
    let settled = false;
    const end = (ok: boolean) => { if (settled) return; settled = true; resolve(ok); if (client) client.close(); };
    client = mqtt.connect(options, {
      onReady: () => end(true),
      onMessage: () => {},
      onClose: () => end(false),
    });
    if (settled) client.close();
  });
}

/**
 * The built-in checks: heap floor, network up, update host reachable, broker connected (when
 * configured); none with diagnostics.builtin false (the application's checks replace them).
 */
export function builtinChecks(ports: { http: HttpPort; system: SystemPort; mqtt?: MqttPort }, config: AppConfig): DiagnosticCheck[] {
  if (!config.diagnostics.builtin) return [];
  let probe: Promise<number> | undefined;
  const status = () => (probe ??= probeHost(ports.http, config.manifestUrl));
  const checks: DiagnosticCheck[] = [
    { name: "heap", run: () => ports.system.freeHeap() >= config.diagnostics.heapFloor },
    { name: "network", network: true, run: () => status().then((s) => s > 0) },
    { name: "update-host", network: true, run: () => status().then((s) => s >= 200 && s < 400) },
  ];
  const mqtt = config.mqtt;
  if (mqtt && ports.mqtt) {
    const port = ports.mqtt;
    // with the device's credentials: a broker that requires them refuses an anonymous check
    checks.push({ name: "broker", network: true, run: () => brokerUp(port, brokerOptions(mqtt, ports.system.deviceId(), "-diag")) });
  }
  return checks;
}
