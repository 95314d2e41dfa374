/*
 * The device application's core, shared by the ESP32 (src/component/xsota.ts, the "xsota" API) and the simulator
 * (host-sim/engines/firmware.ts): boot (confirm or roll back, report), then the update loop: a check
 * right after boot and then every checkIntervalMs, plus checks on command. The optional features
 * (the fleet reporter...) come in AppExtra.features, never by import (modules/features.ts).
 */
import type { Ports } from "./ports";
import type { AgentObserver, AuditEvent } from "./events";
import type { AppConfig } from "./config";
import { Agent, type BootOutcome, type CheckOptions, type CheckOutcome } from "./agent";
import type { DiagnosticCheck } from "./diagnostics";
import type { Features, Reporter } from "./features";
import { seedOf, seededRandom } from "./backoff";

/** How long a restart after an update waits for the outbox's events to be acknowledged (virtual/real ms). */
export const RESTART_DRAIN_MS = 3000;

export interface AppExtra {
  /**
   * Application self-tests added to the built-in diagnostics. They run in the window from boot;
   * one marked `network: true` runs with the network checks, from when the network is up, and its
   * failure counts as the network's (CONFIRM_UNREACHABLE: retried), not the image's.
   */
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
  /**
   * "app": the application brings the network up itself and calls App.networkUp() (the network
   * checks of a self-test wait for it, bounded by diagnostics.networkDeadlineMs; the first check
   * waits for it too). "ready" (default, unless diagnostics.waitForNetwork): up when main runs.
   */
  network?: "ready" | "app";
  /** The optional features included (modules/features.ts); absent: the core alone. */
  features?: Features;
}

export interface App {
  readonly agent: Agent;
  /** Settles once the boot action (self-test, report) is done. */
  readonly booted: Promise<BootOutcome>;
  /** Check now (also what an MQTT "check"/"force" command calls). */
  check(options?: CheckOptions): Promise<CheckOutcome>;
  /** The network is up (with network "app" / diagnostics.waitForNetwork; else a no-op). */
  networkUp(): void;
  /** Stop the loop; safe to call twice. */
  close(): void;
}

/** The app's observer and the reporter's, in that order (a class: its methods stay in flash on the device). */
class Fanout implements AgentObserver {
  reporter: Reporter | undefined;
  constructor(private readonly outer: AgentObserver = {}) {}
  onEvent(e: AuditEvent): void {
    if (this.outer.onEvent) this.outer.onEvent(e);
    if (this.reporter) this.reporter.onEvent(e);
  }
  onProgress(written: number, total: number): void {
    if (this.outer.onProgress) this.outer.onProgress(written, total);
  }
}

/** Start the agent on `ports`. Throws what the Agent constructor throws (CONFIG_INVALID, KEY_*, IMAGE_*). */
export function start(ports: Ports, config: AppConfig | unknown, extra: AppExtra = {}): App {
  return new Runner(ports, config, extra);
}

/**
 * The app: boot, then the check loop. A class, not closures in start(): its methods stay in flash
 * on the device (the agent is preloaded), and it holds one reaction on the agent's check, no async
 * frame and no promise chain, for as long as a download runs.
 */
class Runner implements App {
  readonly agent: Agent;
  readonly booted: Promise<BootOutcome>;
  private readonly observer: Fanout;
  private readonly jitter: () => number;
  private timer = 0;
  private closed = false;
  /** The first check's delay, held until the network is up. */
  private firstCheck = -1;

  constructor(private readonly ports: Ports, config: AppConfig | unknown, extra: AppExtra) {
    const observer = (this.observer = new Fanout(extra.observer));
    const agent = (this.agent = new Agent(ports, config, observer, {
      ...(extra.checks ? { checks: extra.checks } : {}),
      ...(extra.network ? { waitForNetwork: extra.network === "app" } : {}),
      ...(extra.features ? { features: extra.features } : {}),
    }));
    if (extra.rebootWhen) agent.rebootWhen = extra.rebootWhen;
    // FLEET's reporter: version and state on boot, the outbox over QoS 1, announcements and commands.
    const fleet = extra.features?.fleet;
    if (agent.config.mqtt && ports.mqtt && !fleet) ports.system.log("ota: config.mqtt names a broker, but the fleet feature is not included (features/fleet/manifest.json)");
    if (agent.config.mqtt && ports.mqtt && fleet) {
      // agent.ports: in roles mode, secure MQTT trusts the root's anchors (a broker CA rollover)
      const r = fleet.startReporter(agent.ports, agent.config, agent, agent.outbox);
      observer.reporter = r;
      // Up to RESTART_DRAIN_MS for the update's last events to be acknowledged before the restart.
      agent.beforeRestart = () => r.drain(RESTART_DRAIN_MS);
    }
    this.jitter = seededRandom(seedOf(`${ports.system.deviceId()}:check`));
    const firstCheckMs = extra.firstCheckMs ?? 0;
    this.booted = agent.boot().then((out) => {
      // A failed self-test has already asked for a restart: nothing more this boot.
      if (out.action === "self-test" && out.state === "rolled-back") return out;
      // After a network-caused rollback the release is held for retryMs: the first check waits that long.
      const first = Math.max(firstCheckMs, out.retryMs ?? 0);
      if (agent.networkIsUp) this.schedule(first);
      else this.firstCheck = first;
      return out;
    });
  }

  check(options: CheckOptions = {}): Promise<CheckOutcome> {
    return this.agent.check(options).then(undefined, (e: unknown) => this.failed(e));
  }

  networkUp(): void {
    this.agent.networkUp();
    const first = this.firstCheck;
    this.firstCheck = -1;
    if (first >= 0) this.schedule(first);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ports.clock.clearTimeout(this.timer);
    this.agent.close();
    if (this.observer.reporter) this.observer.reporter.close();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    const clock = this.ports.clock;
    clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(() => this.loop(), ms);
  }

  private loop(): void {
    this.agent.check({}).then((out) => this.next(out), (e: unknown) => this.next(this.failed(e)));
  }

  private failed(e: unknown): CheckOutcome {
    this.ports.system.log(`check failed: ${e instanceof Error ? e.message : String(e)}`);
    return { state: "failed", code: "INTERNAL" };
  }

  private next(out: CheckOutcome): void {
    if (out.state === "rebooting") return;
    const interval = this.agent.config.checkIntervalMs;
    // +-10 % seeded jitter: a fleet booted together does not poll the host in lockstep.
    if (interval > 0) this.schedule(Math.round(interval * (0.9 + 0.2 * this.jitter())));
  }
}
