/*
 * Self-diagnostics after an update: pluggable checks, each with its own timeout, the whole
 * run bounded by the diagnostic window (30 s of device time by default). A check fails by
 * returning false, throwing or rejecting; a check that does not settle in time fails with
 * CONFIRM_TIMEOUT, as does a run that outlasts the window.
 */
import type { ClockPort, HttpPort, MqttPort, SystemPort } from "./ports";
import type { AppConfig } from "./config";
import { OtaError, codeOf, type ErrorCode } from "./errors";

export interface DiagnosticCheck {
  name: string;
  /** Per-check timeout (ms); default config.diagnostics.checkTimeoutMs. */
  timeoutMs?: number;
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
  return new Promise<DiagnosticResult>((resolve) => new Diagnostics(checks, clock, windowMs, checkTimeoutMs, resolve).next());
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
    private readonly resolve: (r: DiagnosticResult) => void,
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

function brokerUp(mqtt: MqttPort, host: string, port: number, id: string, secure: boolean | undefined): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let client: { close(): void } | undefined;
    let settled = false;
    const end = (ok: boolean) => { if (settled) return; settled = true; resolve(ok); if (client) client.close(); };
    client = mqtt.connect({ host, port, id, ...(secure ? { secure } : {}) }, {
      onReady: () => end(true),
      onMessage: () => {},
      onClose: () => end(false),
    });
    if (settled) client.close();
  });
}

/** The built-in checks: heap floor, network up, update host reachable, broker connected (when configured). */
export function builtinChecks(ports: { http: HttpPort; system: SystemPort; mqtt?: MqttPort }, config: AppConfig): DiagnosticCheck[] {
  let probe: Promise<number> | undefined;
  const status = () => (probe ??= probeHost(ports.http, config.manifestUrl));
  const checks: DiagnosticCheck[] = [
    { name: "heap", run: () => ports.system.freeHeap() >= config.diagnostics.heapFloor },
    { name: "network", run: () => status().then((s) => s > 0) },
    { name: "update-host", run: () => status().then((s) => s >= 200 && s < 400) },
  ];
  const mqtt = config.mqtt;
  if (mqtt && ports.mqtt) {
    const port = ports.mqtt;
    checks.push({ name: "broker", run: () => brokerUp(port, mqtt.host, mqtt.port, `${ports.system.deviceId()}-diag`, mqtt.secure) });
  }
  return checks;
}
