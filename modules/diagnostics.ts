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

function withTimeout<T>(clock: ClockPort, p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const id = clock.setTimeout(() => reject(new OtaError("CONFIRM_TIMEOUT", `${what} did not finish in ${ms} ms`)), ms);
    p.then(
      (v) => { clock.clearTimeout(id); resolve(v); },
      (e) => { clock.clearTimeout(id); reject(e); },
    );
  });
}

/** Run `checks` in order within `windowMs`. Raises nothing: the result carries the code. */
export async function runDiagnostics(checks: readonly DiagnosticCheck[], clock: ClockPort, windowMs: number, checkTimeoutMs: number): Promise<DiagnosticResult> {
  const deadline = clock.now() + windowMs;
  for (const check of checks) {
    const left = deadline - clock.now();
    if (left <= 0) return { ok: false, code: "CONFIRM_TIMEOUT", check: check.name, detail: `window of ${windowMs} ms used up` };
    const limit = Math.min(left, check.timeoutMs ?? checkTimeoutMs);
    try {
      const ok = await withTimeout(clock, Promise.resolve().then(() => check.run()), limit, `check '${check.name}'`);
      if (ok === false) return { ok: false, code: "CONFIRM_DIAGNOSTICS", check: check.name, detail: `check '${check.name}' failed` };
    } catch (e) {
      const code = codeOf(e) === "CONFIRM_TIMEOUT" ? "CONFIRM_TIMEOUT" : "CONFIRM_DIAGNOSTICS";
      return { ok: false, code, check: check.name, detail: e instanceof Error ? e.message : String(e) };
    }
  }
  return { ok: true };
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
    { name: "network", run: async () => (await status()) > 0 },
    { name: "update-host", run: async () => { const s = await status(); return s >= 200 && s < 400; } },
  ];
  const mqtt = config.mqtt;
  if (mqtt && ports.mqtt) {
    const port = ports.mqtt;
    checks.push({ name: "broker", run: () => brokerUp(port, mqtt.host, mqtt.port, `${ports.system.deviceId()}-diag`, mqtt.secure) });
  }
  return checks;
}
