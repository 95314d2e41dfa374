import { describe, expect, it } from "vitest";
import { runDiagnostics, type DiagnosticCheck, type DiagnosticResult } from "../../modules/diagnostics";
import { VirtualClock } from "../../backend/clock";

async function run(checks: DiagnosticCheck[], windowMs = 30_000, timeoutMs = 10_000): Promise<{ r: DiagnosticResult; t: number }> {
  const clock = new VirtualClock();
  let r: DiagnosticResult | undefined;
  void runDiagnostics(checks, clock, windowMs, timeoutMs).then((x) => { r = x; });
  for (let i = 0; i < 100 && !r; i++) {
    await new Promise((res) => setImmediate(res));
    if (!r) clock.step();
  }
  return { r: r!, t: clock.now() };
}

const never = () => new Promise<boolean>(() => {});

describe("self-diagnostics", () => {
  it("passes when every check passes (sync, async, void)", async () => {
    const { r } = await run([{ name: "a", run: () => true }, { name: "b", run: async () => true }, { name: "c", run: () => {} }]);
    expect(r).toEqual({ ok: true });
  });
  it("fails on false, naming the check", async () => {
    const { r } = await run([{ name: "a", run: () => true }, { name: "heap", run: () => false }]);
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "heap" });
  });
  it("fails on a throw or a rejection", async () => {
    expect((await run([{ name: "x", run: () => { throw new Error("boom"); } }])).r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "x" });
    expect((await run([{ name: "y", run: () => Promise.reject(new Error("no")) }])).r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "y" });
  });
  it("a check that never settles times out after its own timeout, in virtual time", async () => {
    const { r, t } = await run([{ name: "slow", timeoutMs: 2000, run: never }]);
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_TIMEOUT", check: "slow" });
    expect(t).toBe(2000);
  });
  it("the whole run is bounded by the window", async () => {
    const wait = (ms: number, clock: VirtualClock) => new Promise<void>((res) => clock.setTimeout(res, ms));
    const clock = new VirtualClock();
    let r: DiagnosticResult | undefined;
    const checks: DiagnosticCheck[] = [1, 2, 3, 4].map((i) => ({ name: `c${i}`, run: () => wait(9000, clock) }));
    void runDiagnostics(checks, clock, 30_000, 10_000).then((x) => { r = x; });
    for (let i = 0; i < 100 && !r; i++) { await new Promise((res) => setImmediate(res)); if (!r) clock.step(); }
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_TIMEOUT", check: "c4" });
    expect(clock.now()).toBe(30_000);
  });
});

describe("built-in checks against real services", () => {
  it("heap, network, update host and broker: pass when up, fail when down", async () => {
    const { builtinChecks } = await import("../../modules/diagnostics");
    const { parseConfig } = await import("../../modules/config");
    const { startBroker } = await import("../../backend/mqtt/broker");
    const { TcpMqttPort } = await import("../../backend/mqtt/client");
    const { NodeHttp } = await import("../../host-sim/engines/ports/http");
    const { SimSystem } = await import("../../host-sim/engines/ports/system");
    const { startUpdateHost } = await import("../../backend/update-host");
    const { makeCa, makeServerCert } = await import("../../backend/release/pki");
    const ca = await makeCa();
    const cert = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
    const host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, routes: { "/r.json": new Uint8Array([1]) } });
    const broker = await startBroker({ kind: "aedes" });
    try {
      const sys = (heap: number) => new SimSystem({ deviceId: "d", hardware: "h", resetReason: "software", freeHeap: heap, onRestart: () => {}, onLog: () => {} });
      const key = { type: "ecdsa-p256", spki: "AAAA" };
      const config = (url: string, port: number) => parseConfig({ product: "p", manifestUrl: url, trustedKeys: [key], mqtt: { host: "127.0.0.1", port }, diagnostics: { windowMs: 30000, heapFloor: 10000, checkTimeoutMs: 5000 } });
      const http = new NodeHttp({ ca: ca.caCertPem });
      const mqtt = new TcpMqttPort();
      const results = async (heap: number, url: string, port: number) => {
        const out: Record<string, boolean> = {};
        for (const c of builtinChecks({ http, system: sys(heap), mqtt }, config(url, port))) {
          try { out[c.name] = (await c.run()) !== false; } catch { out[c.name] = false; }
        }
        return out;
      };
      expect(await results(50_000, `${host.url}/r.json`, broker.port)).toEqual({ heap: true, network: true, "update-host": true, broker: true });
      expect(await results(5_000, `${host.url}/missing.json`, broker.port)).toEqual({ heap: false, network: true, "update-host": false, broker: true });
      await broker.stop();
      const down = await results(50_000, "https://127.0.0.1:1/r.json", broker.port);
      expect(down).toEqual({ heap: true, network: false, "update-host": false, broker: false });
    } finally {
      await broker.close();
      await host.close();
    }
  });
});

describe("the self-test and the network (runSelfTest)", async () => {
  const { runSelfTest, NetworkSignal } = await import("../../modules/diagnostics");
  const { parseConfig } = await import("../../modules/config");
  const d = (o: Record<string, unknown> = {}) => parseConfig({ product: "p", manifestUrl: "https://h/r.json", trustedKeys: [{ type: "ecdsa-p256", spki: "AAAA" }], diagnostics: { windowMs: 30_000, checkTimeoutMs: 10_000, networkDeadlineMs: 120_000, ...o } }).diagnostics;
  const wait = (clock: VirtualClock, ms: number) => new Promise<void>((res) => clock.setTimeout(res, ms));

  /** Runs the self-test on virtual time; `upAt` (ms) signals the network then (undefined: never). */
  async function selfTest(checks: (clock: VirtualClock, ran: Record<string, number>) => DiagnosticCheck[], o: { wait?: boolean; upAt?: number; config?: Record<string, unknown> } = {}) {
    const clock = new VirtualClock();
    const ran: Record<string, number> = {};
    const network = new NetworkSignal(clock, o.wait ?? true);
    if (o.upAt !== undefined) clock.setTimeout(() => network.signal(), o.upAt);
    let r: DiagnosticResult | undefined;
    let at = -1;
    void runSelfTest(checks(clock, ran), network, clock, d(o.config)).then((x) => { r = x; at = clock.now(); });
    for (let i = 0; i < 200 && !r; i++) { await new Promise((res) => setImmediate(res)); if (!r) clock.step(); }
    return { r: r!, at, ran };
  }
  const mark = (name: string, ran: Record<string, number>, clock: VirtualClock, ok = true, network = false): DiagnosticCheck => ({ name, network, run: () => { ran[name] = clock.now(); return ok; } });

  it("network up after 40 s, signalled: the image's checks run from boot, the network ones from then, and it passes", async () => {
    const { r, ran, at } = await selfTest((clock, ran) => [mark("heap", ran, clock), { name: "app", run: () => wait(clock, 5000).then(() => { ran.app = clock.now(); }) }, { name: "net", network: true, run: () => wait(clock, 9000).then(() => { ran.net = clock.now(); }) }], { upAt: 40_000 });
    expect(r).toEqual({ ok: true });
    expect(ran).toEqual({ heap: 0, app: 5000, net: 49_000 });
    expect(at).toBe(49_000);
  });

  it("network never up: CONFIRM_NETWORK at networkDeadlineMs, the network checks never ran", async () => {
    const { r, ran, at } = await selfTest((clock, ran) => [mark("heap", ran, clock), mark("net", ran, clock, true, true)], { config: { networkDeadlineMs: 90_000 } });
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_NETWORK", check: "network" });
    expect(ran).toEqual({ heap: 0 });
    expect(at).toBe(90_000);
  });

  it("a network check that fails or times out is CONFIRM_UNREACHABLE, with the check's own code in the detail", async () => {
    const failed = await selfTest((clock, ran) => [mark("heap", ran, clock), mark("update-host", ran, clock, false, true)], { wait: false });
    expect(failed.r).toMatchObject({ ok: false, code: "CONFIRM_UNREACHABLE", check: "update-host", detail: expect.stringContaining("CONFIRM_DIAGNOSTICS") });
    const slow = await selfTest(() => [{ name: "broker", network: true, timeoutMs: 3000, run: never }], { upAt: 10_000 });
    expect(slow.r).toMatchObject({ ok: false, code: "CONFIRM_UNREACHABLE", check: "broker", detail: expect.stringContaining("CONFIRM_TIMEOUT") });
    expect(slow.at).toBe(13_000);
  });

  it("the image's failure wins and ends the wait for the network at once", async () => {
    const early = await selfTest((clock, ran) => [mark("app", ran, clock, false), mark("net", ran, clock, true, true)]);
    expect(early.r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "app" });
    expect(early.at).toBe(0);
    // The network fails first; the image's own check, still running, fails later: the image is named.
    const later = await selfTest((clock) => [{ name: "app", run: () => wait(clock, 8000).then(() => false) }, { name: "net", network: true, run: () => false }], { wait: false });
    expect(later.r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "app" });
    expect(later.at).toBe(8000);
  });

  it("by default the network is up at start: one window from boot, as before", async () => {
    const { r, at } = await selfTest((clock) => [1, 2, 3, 4].map((i) => ({ name: `n${i}`, network: true, run: () => wait(clock, 9000) })), { wait: false });
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_UNREACHABLE", check: "n4", detail: "CONFIRM_TIMEOUT: self-diagnostics did not finish in time: check 'n4' did not finish in 3000 ms" });
    expect(at).toBe(30_000);
  });
});
