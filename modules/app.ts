/*
 * The device application's core, shared by the ESP32 (src/main.ts) and the simulator
 * (host-sim/firmware.ts): boot (confirm or roll back, report), then the update loop: a check
 * right after boot and then every checkIntervalMs, plus checks on command.
 */
import type { Ports } from "./ports";
import type { AgentObserver } from "./events";
import type { AppConfig } from "./config";
import { Agent, type BootOutcome, type CheckOptions, type CheckOutcome } from "./agent";
import type { DiagnosticCheck } from "./diagnostics";
import { startReporter, type Reporter } from "./reporter";
import { seedOf, seededRandom } from "./backoff";

/** How long a restart after an update waits for the outbox's events to be acknowledged (virtual/real ms). */
export const RESTART_DRAIN_MS = 3000;

export interface AppExtra {
  /** Application self-tests added to the built-in diagnostics. */
  checks?: DiagnosticCheck[];
  observer?: AgentObserver;
  /** Delay of the first check after boot (ms, default 0). */
  firstCheckMs?: number;
  /**
   * Whether a restart is acceptable now (e.g. not in the middle of the application's job). After
   * an update is installed the agent asks it every reboot.pollMs and restarts once it says yes,
   * or at reboot.deadlineMs regardless (reported as REBOOT_DEADLINE). Absent: restart at once.
   */
  rebootWhen?: () => boolean;
}

export interface App {
  readonly agent: Agent;
  /** Settles once the boot action (self-test, report) is done. */
  readonly booted: Promise<BootOutcome>;
  /** Check now (also what an MQTT "check"/"force" command calls). */
  check(options?: CheckOptions): Promise<CheckOutcome>;
  /** Stop the loop; safe to call twice. */
  close(): void;
}

/** Start the agent on `ports`. Throws what the Agent constructor throws (CONFIG_INVALID, KEY_*, IMAGE_*). */
export function start(ports: Ports, config: AppConfig | unknown, extra: AppExtra = {}): App {
  let reporter: Reporter | undefined;
  const outer = extra.observer ?? {};
  const observer: AgentObserver = {
    onEvent: (e) => {
      if (outer.onEvent) outer.onEvent(e);
      if (reporter) reporter.onEvent(e);
    },
    onProgress: (w, t) => {
      if (outer.onProgress) outer.onProgress(w, t);
    },
  };
  const agent = new Agent(ports, config, observer, extra.checks ? { checks: extra.checks } : {});
  if (extra.rebootWhen) agent.control.rebootWhen = extra.rebootWhen;
  // FLEET's reporter: version and state on boot, the outbox over QoS 1, announcements and commands.
  if (agent.config.mqtt && ports.mqtt) {
    const r = startReporter(ports, agent.config, agent, agent.outbox);
    reporter = r;
    // Up to RESTART_DRAIN_MS for the update's last events to be acknowledged before the restart.
    agent.beforeRestart = () => r.drain(RESTART_DRAIN_MS);
  }
  const clock = ports.clock;
  const jitter = seededRandom(seedOf(`${ports.system.deviceId()}:check`));
  let timer = 0;
  let closed = false;
  const schedule = (ms: number) => {
    if (closed) return;
    clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      void loop();
    }, ms);
  };
  // Promise chains, not async functions: each suspended async frame would hold about 1 KB of RAM
  // on the chip for as long as the download runs.
  const loop = () =>
    run({}).then((out) => {
      if (out.state === "rebooting") return;
      // +-10 % seeded jitter: a fleet booted together does not poll the host in lockstep.
      if (agent.config.checkIntervalMs > 0) schedule(Math.round(agent.config.checkIntervalMs * (0.9 + 0.2 * jitter())));
    });
  const run = (options: CheckOptions): Promise<CheckOutcome> =>
    agent.check(options).then(undefined, (e: unknown): CheckOutcome => {
      ports.system.log(`check failed: ${e instanceof Error ? e.message : String(e)}`);
      return { state: "failed", code: "INTERNAL" };
    });
  const booted = agent.boot().then((out) => {
    // A failed self-test has already asked for a restart: nothing more this boot.
    if (!(out.action === "self-test" && out.state === "rolled-back")) schedule(extra.firstCheckMs ?? 0);
    return out;
  });
  return {
    agent,
    booted,
    check: (options = {}) => run(options),
    close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      agent.close();
      if (reporter) reporter.close();
    },
  };
}
