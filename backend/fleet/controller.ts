/*
 * The fleet controller: publishes a release through a staged rollout plan, watches the audit
 * events, halts and flags the release when failures or rollbacks pass a threshold, resumes on
 * command, and issues forced updates to a group.
 *
 * Signing (legacy mode): the controller holds the release signing key. In roles mode
 * (options.roles) it holds only the online rollout and commands keys and signs rollout documents
 * that name the release role's envelope by hash (modules/roles.ts): a stolen controller can halt,
 * re-order or force signed releases, never ship an image of its own. Each stage re-signs the manifest with
 * the stage's percentage under one constant rollout id (so device buckets are stable and each
 * stage only adds devices); a halt re-signs it at 0 %. Every stage's envelope is published as
 * the retained announcement on releases/<product>/<channel> and handed to `publishManifest`
 * (the static host's copy at the devices' manifestUrl).
 *
 * State lives in the audit log (SQLite or PostgreSQL, through AuditStore): a restarted
 * controller picks up a running release at its current stage. Several controllers may share
 * one PostgreSQL log: each ingests every event (redeliveries dropped by (device, seq) and content;
 * the same seq with other content kept as a conflict), and every
 * change of stage or status is a compare-and-set on the release row (AuditStore.transition), so
 * when their stage timers fire together exactly one widens the rollout and announces it; the
 * others follow the stage it wrote without announcing.
 */
import type { ClockPort, TimerId } from "../../modules/ports";
import { topics } from "../../modules/reporter";
import { OtaError } from "../../modules/errors";
import { fromBase64, toBase64 } from "../../modules/bytes";
import type { Manifest } from "../../modules/manifest";
import { createManifest } from "../release/manifest-tool";
import { createRollout } from "../release/roles-tool";
import type { SigningKey } from "../release/keys";
import { TcpMqttPort, type TcpMqttClient } from "../mqtt/client";
import type { VirtualClock } from "../clock";
import { ControlTracker, IssueClock, controlMessage, type ControlCommand } from "./control";
import type { AuditStore, Ingest, IngestOutcome, Parked, ReleaseRow, Expect, Transition } from "./audit-store";
import { deviceMessage } from "./device-messages";
import { createHash } from "node:crypto";

export interface Stage {
  percent: number;
  /** How long to watch before widening (ms of the controller's clock). */
  watchMs: number;
}

export interface Thresholds {
  /** Halt when failed devices / devices that started exceed this (default 0.2). */
  maxFailureRate: number;
  /** ...and at least this many devices failed (default 3). */
  minFailures: number;
}

export interface ControllerOptions {
  broker: { host: string; port: number };
  log: AuditStore;
  clock: ClockPort;
  /** Held while broker round trips are in flight (simulation), and for `fanoutHoldMs` after each publish. */
  virtualClock?: VirtualClock;
  /**
   * Real ms the virtual clock is held after each announcement or command: the broker's fan-out
   * to devices is invisible to the clock (QoS 0, no ack), and without this virtual time could
   * race ahead before the devices have even received the message. Default 500.
   */
  fanoutHoldMs?: number;
  /** Legacy mode: the one key that signs manifests and commands. */
  signingKey?: SigningKey;
  /**
   * Roles mode (modules/roles.ts): the controller holds only the online keys. It never signs a
   * release: each release comes as the release role's envelope (startRelease's `release`), and
   * each stage, halt or force is a rollout document naming it by hash, signed with `rollout`;
   * control commands are signed with `commands`.
   */
  roles?: { rollout: SigningKey; commands: SigningKey };
  /** Lifetime of each re-signed manifest, ms of the controller's clock (default 30 days). */
  expiryMs?: number;
  /** Copy each stage's envelope to the static update host (the devices' manifestUrl). */
  publishManifest?: (envelope: Uint8Array, release: ReleaseRow) => Promise<void> | void;
  thresholds?: Partial<Thresholds>;
  /** Chart sample period (ms of the controller's clock, default 60 000). */
  sampleEveryMs?: number;
  clientId?: string;
  /**
   * The controller's own MQTT user name and password. Under the shipped ACL (deploy/mosquitto/acl)
   * the user name is xsota-controller: it alone reads every device's topics and writes cmd and releases.
   */
  credentials?: { username: string; password: string };
}

/** The fields a release is made of; rollout and force are the controller's. */
export type ReleaseFields = Omit<Manifest, "schema" | "rollout" | "force" | "metaVersion" | "expires" | "channel"> & { metaVersion?: number; expires?: number; channel?: string };

const DEFAULT_CONTROLLER_EXPIRY_MS = 30 * 24 * 3600 * 1000;

/** "5:10m,25:10m,100" -> stages. Throws USAGE. */
export function parsePlan(text: string): Stage[] {
  const stages = text.split(",").map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)%?(?::(\d+(?:\.\d+)?)(ms|s|m|h)?)?\s*$/.exec(part);
    if (!m) throw new OtaError("USAGE", `bad plan stage '${part}' (expected PERCENT[:WATCH], e.g. 5:10m)`);
    const percent = Number(m[1]);
    const unit = m[3] ?? "m";
    const watchMs = m[2] === undefined ? 0 : Number(m[2]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3600_000);
    if (percent <= 0 || percent > 100) throw new OtaError("USAGE", `stage percentage must be in (0, 100]: ${part}`);
    return { percent, watchMs };
  });
  for (let i = 1; i < stages.length; i++) {
    if (stages[i]!.percent < stages[i - 1]!.percent) throw new OtaError("USAGE", "plan percentages must not decrease");
  }
  return stages;
}

export class FleetController {
  readonly log: AuditStore;
  private readonly clock: ClockPort;
  private readonly thresholds: Thresholds;
  private client: TcpMqttClient | undefined;
  private readonly port: TcpMqttPort;
  private connected = false;
  private closed = false;
  private stageTimer: TimerId | 0 = 0;
  /** Bumped whenever the stage timer is cleared or armed (follow() checks it after asking the log). */
  private stageGen = 0;
  private sampleTimer: TimerId | 0 = 0;
  private reconnectTimer: TimerId | 0 = 0;
  private baseline = { failures: 0, attempts: 0 };
  private listeners = new Set<() => void>();
  private pending: { topic: string; payload: Uint8Array; retain: boolean }[] = [];
  private dirty = true;
  /** Device messages waiting for the log (written in one transaction per turn). */
  private inbox: Ingest[] = [];
  private flushing = false;
  private flushRetry: TimerId | 0 = 0;
  /** Devices paused, awaiting install or awaiting reboot (per-update control, backend/fleet/control.ts). */
  readonly activity = new ControlTracker();
  private readonly issued: IssueClock;
  /** Redeliveries dropped: same (device, seq) and the same content. */
  duplicates = 0;
  /** Events whose (device, seq) was logged with other content: kept aside in the log (event_conflicts), not dropped. */
  conflicts = 0;
  /** Device messages parked (malformed, or refused by the log): kept in the log's parked table, not retried. */
  parked = 0;
  received = 0;

  private constructor(private readonly options: ControllerOptions) {
    this.log = options.log;
    this.clock = options.clock;
    this.thresholds = { maxFailureRate: options.thresholds?.maxFailureRate ?? 0.2, minFailures: options.thresholds?.minFailures ?? 3 };
    this.issued = new IssueClock(() => this.clock.wallTime());
    this.port = new TcpMqttPort(options.virtualClock ? { clock: options.virtualClock } : {});
  }

  /** Connect (waits for the broker) and pick up a running release. Throws MQTT_CONNECT. */
  static async start(options: ControllerOptions): Promise<FleetController> {
    const c = new FleetController(options);
    await c.activity.load(options.log);
    await c.connect(true);
    const running = await c.current();
    if (running && running.status === "running") await c.follow(running, true);
    c.scheduleSample();
    return c;
  }

  private connect(first: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.options.clientId ?? "xsota-controller";
      const cred = this.options.credentials;
      const opts = { host: this.options.broker.host, port: this.options.broker.port, id, clean: false, subscribeQos: 1 as const, keepalive: 60_000,
        ...(cred ? { user: cred.username, password: cred.password } : {}) };
      const client = this.port.connect(opts, {
        onReady: () => {
          first = false;
          this.connected = true;
          for (const t of ["devices/+/events", "devices/+/state", "devices/+/version", "devices/+/online"]) client.subscribe(t);
          for (const p of this.pending.splice(0)) client.publish(p.topic, p.payload, { qos: 1, retain: p.retain });
          resolve();
        },
        onMessage: (topic, payload) => this.onMessage(topic, payload),
        onClose: (reason) => {
          this.connected = false;
          this.client = undefined;
          if (first && !this.closed) {
            first = false;
            reject(new OtaError("MQTT_CONNECT", reason));
            return;
          }
          if (!this.closed) this.reconnectTimer = this.clock.setTimeout(() => void this.connect(false).catch(() => {}), 1000);
        },
      });
      this.client = client;
    });
  }

  private publish(topic: string, payload: Uint8Array | string, retain: boolean): void {
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    const vc = this.options.virtualClock;
    if (vc) {
      // Held I/O counts as quiet after a short silence, so keep it busy for the whole window.
      const release = vc.hold();
      const beat = setInterval(() => vc.activity(), 5);
      setTimeout(() => {
        clearInterval(beat);
        release();
      }, this.options.fanoutHoldMs ?? 500).unref();
    }
    if (this.client && this.connected) this.client.publish(topic, bytes, { qos: 1, retain });
    else this.pending.push({ topic, payload: bytes, retain });
  }

  /**
   * A device's report, checked before it is queued (backend/fleet/device-messages.ts): a malformed
   * one is parked (counted, kept in the log's parked table, shown by `fleet status`), never retried.
   * The device id is the topic's: trusted only under the broker ACL (deploy/mosquitto/acl).
   */
  private onMessage(topic: string, payload: Uint8Array): void {
    const text = Buffer.from(payload).toString("utf8");
    const now = this.clock.wallTime();
    const m = deviceMessage(topic, text, now);
    if (!m) return;
    if ("reason" in m) {
      this.park({ device: topic.split("/")[1]!, topic, payload: text, reason: m.reason, at: now });
      return;
    }
    if (m.item.kind === "event") {
      this.received++;
      this.activity.note(m.item.device, m.item.event);
    }
    this.inbox.push(m.item);
    void this.flush();
  }

  /** Count and keep a message that will not be retried (best effort: a log that is down loses the copy, not the count). */
  private park(p: Parked): void {
    this.parked++;
    const digest = createHash("sha256").update(p.topic).update("\n").update(p.payload).digest("hex");
    void Promise.resolve().then(() => this.log.park(p, digest)).catch(() => undefined);
    this.changed();
  }

  /**
   * Write what arrived to the log, in arrival order, one transaction per batch (whatever queued
   * up while the previous batch was written). A batch the log refused (database down) goes back
   * to the front of the inbox and is retried after 1 s: the broker has already acked it.
   * Virtual time is not held for it: a fleet's events arrive without pause, and a held clock
   * would wait for a silence that never comes (each message is stamped when it arrives).
   */
  private async flush(): Promise<void> {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    try {
      await Promise.resolve(); // let the rest of this socket read queue up
      while (this.inbox.length && !this.closed) {
        let items = this.inbox.splice(0);
        let outcome: IngestOutcome[];
        try {
          outcome = await this.log.ingest(items);
        } catch {
          // The log is down, or one item of the batch is refused: one at a time, the refused ones parked.
          const one = await this.ingestOneByOne(items);
          if (!one) {
            if (!this.flushRetry) this.flushRetry = this.clock.setTimeout(() => { this.flushRetry = 0; void this.flush(); }, 1000);
            return;
          }
          ({ items, outcome } = one);
        }
        let failed = false;
        items.forEach((it, i) => {
          if (it.kind !== "event") return;
          if (outcome[i] === "duplicate") this.duplicates++;
          else if (outcome[i] === "conflict") this.conflicts++;
          else if (it.event.state === "rolled-back" || it.event.state === "failed") failed = true;
        });
        if (failed) await this.evaluate();
        this.changed();
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * After a batch failed: each item alone. An item the log refuses while it answers a plain
   * query (meta) is parked; when the log does not answer, the items not yet written go back to
   * the front of the inbox (undefined: retry later). The items written, with their outcomes.
   */
  private async ingestOneByOne(items: Ingest[]): Promise<{ items: Ingest[]; outcome: IngestOutcome[] } | undefined> {
    const done: Ingest[] = [];
    const outcome: IngestOutcome[] = [];
    for (let k = 0; k < items.length; k++) {
      const it = items[k]!;
      try {
        outcome.push((await this.log.ingest([it]))[0]!);
        done.push(it);
        continue;
      } catch (e) {
        let up = true;
        try {
          await this.log.meta("schema");
        } catch {
          up = false;
        }
        if (!up) {
          this.inbox.unshift(...items.slice(k));
          if (!done.length) return undefined;
          break;
        }
        const payload = JSON.stringify(it.kind === "event" ? it.event : it.kind === "state" ? it.state : it.kind === "version" ? it.version : it.online);
        this.park({ device: it.device, topic: `devices/${it.device}/${it.kind === "event" ? "events" : it.kind}`, payload, reason: `refused by the log: ${(e as Error).message}`, at: it.at });
      }
    }
    return { items: done, outcome };
  }

  /** Resolves when everything received so far is in the log. */
  async settled(): Promise<void> {
    while (this.flushing || this.inbox.length) await new Promise((r) => setImmediate(r));
  }

  private changed(): void {
    this.dirty = true;
    for (const l of this.listeners) l();
  }

  /** Called whenever the log changes (the fleet view's live updates). Returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The newest release. */
  async current(): Promise<ReleaseRow | undefined> {
    const all = await this.log.releases();
    return all[all.length - 1];
  }

  /** Start a release through `plan`. Throws USAGE when a release is still running. */
  async startRelease(fields: ReleaseFields, plan: Stage[], rolloutId?: string, release?: Uint8Array): Promise<ReleaseRow> {
    if (this.options.roles && !release) throw new OtaError("USAGE", "roles mode: the release role's signed envelope is needed");
    const cur = await this.current();
    if (cur && cur.status === "running") throw new OtaError("USAGE", `release ${cur.id} is still running; halt it first`);
    if (!plan.length) throw new OtaError("USAGE", "empty rollout plan");
    const now = this.clock.wallTime();
    const r: ReleaseRow = {
      id: rolloutId ?? `${fields.product}-${fields.version}-${now.toString(36)}`,
      product: fields.product,
      channel: fields.channel ?? "stable",
      version: fields.version,
      status: "running",
      stage: 0,
      plan,
      flagged: false,
      reason: null,
      created: now,
      updated: now,
      manifest: { ...fields, ...(release ? { releaseEnvelope: toBase64(release) } : {}) } as Record<string, unknown>,
    };
    await this.log.putRelease(r);
    await this.log.stageStarted(r.id, 0, plan[0]!.percent, now);
    this.baseline = { failures: 0, attempts: 0 };
    this.entered(r);
    return r;
  }

  /** The last metaVersion this controller signed. */
  private lastMetaVersion = 0;

  /**
   * Each re-signing gets a metaVersion above every earlier one (devices refuse a lower one,
   * MANIFEST_REPLAY): max(now, the release's own + 1, the last this controller signed + 1, and the
   * release row's update time + 1, so a restarted controller whose clock went back still grows).
   * Online metadata is short-lived: it expires at now + expiryMs, or at the release's own expiry if earlier.
   */
  private sign(r: ReleaseRow, percent: number, extra: { force?: boolean; groups?: string[] } = {}): Uint8Array {
    const base = r.manifest as unknown as ReleaseFields;
    const now = this.clock.wallTime();
    const metaVersion = Math.max(now, (base.metaVersion ?? 0) + 1, this.lastMetaVersion + 1, r.updated + 1);
    this.lastMetaVersion = metaVersion;
    const expires = Math.min(base.expires ?? Number.MAX_SAFE_INTEGER, now + (this.options.expiryMs ?? DEFAULT_CONTROLLER_EXPIRY_MS));
    const roles = this.options.roles;
    const release = (r.manifest as { releaseEnvelope?: string }).releaseEnvelope;
    if (roles) {
      if (release === undefined) throw new OtaError("USAGE", `release ${r.id} has no release-role envelope (roles mode)`);
      const groups = extra.groups ?? base.groups;
      return createRollout({
        release: fromBase64(release), metaVersion, expires, keys: [roles.rollout],
        ...(extra.force ? { force: true } : { rollout: { id: r.id, percent } }),
        ...(groups ? { groups } : {}), ...(base.regions ? { regions: base.regions } : {}),
      });
    }
    const { releaseEnvelope: _e, ...plain } = base as ReleaseFields & { releaseEnvelope?: string };
    const fields = { ...plain, channel: r.channel, ...extra, metaVersion, expires };
    const input = extra.force ? fields : { ...fields, rollout: { id: r.id, percent } };
    return createManifest({ ...input, keys: [this.signingKey()] });
  }

  /** Legacy mode's key. Throws USAGE in roles mode's absence of one. */
  private signingKey(): SigningKey {
    if (!this.options.signingKey) throw new OtaError("USAGE", "the controller has no signing key (roles mode signs rollouts only)");
    return this.options.signingKey;
  }

  /** The key control commands are signed with: the commands role's, else the legacy key. */
  private commandKey(): SigningKey {
    return this.options.roles?.commands ?? this.signingKey();
  }

  private announce(r: ReleaseRow, percent: number): void {
    const env = this.sign(r, percent);
    this.publish(topics.releases(r.product, r.channel), env, true);
    void this.options.publishManifest?.(env, r);
  }

  /**
   * Change the release from `from` (status, stage) to `next` if no other controller did first.
   * True when this controller made the change (and so announces it).
   */
  private async transition(from: Expect, next: ReleaseRow, t: Omit<Transition, "next">): Promise<boolean> {
    const release = this.options.virtualClock?.hold();
    try {
      return await this.log.transition(next.id, from, { next, ...t });
    } finally {
      release?.();
    }
  }

  /** This controller wrote stage `r.stage`: announce it and watch it. */
  private entered(r: ReleaseRow): void {
    const stage = r.plan[r.stage]!;
    this.announce(r, stage.percent);
    this.clearStageTimer();
    // Watch from the moment the stage started (r.updated, the time the log recorded), not from now:
    // the log's awaits may have let virtual time jump on a loaded machine (a CI run widened the
    // 30 % stage 83 virtual minutes after it started instead of 10).
    this.armStage(r.id, r.stage, Math.max(0, r.updated + stage.watchMs - this.clock.wallTime()));
    this.changed();
  }

  /**
   * Watch a running release another controller (or an earlier run of this one) put in its stage:
   * the stage timer runs out when that stage's watch does. `reannounce`: publish the stage's
   * announcement again (a restarted controller, in case the last one died before it did).
   */
  private async follow(r: ReleaseRow, reannounce: boolean): Promise<void> {
    this.clearStageTimer();
    if (r.status !== "running") return;
    const gen = this.stageGen;
    const stage = r.plan[r.stage]!;
    // Virtual time stands still while the log is asked, as in armStage and transition.
    const release = this.options.virtualClock?.hold();
    let open: { started: number } | undefined;
    try {
      open = (await this.log.stages(r.id)).filter((s) => s.idx === r.stage && s.ended === null).at(-1);
    } finally {
      release?.();
    }
    // The stage timer was armed (or cleared) while the log was asked: by entered() for a stage this
    // controller just widened, or by a fresher follow. That decision is newer than `r`; it stands.
    // (Without this, a sample's follow() of the stage before replaced the new stage's timer, and a
    // CI dry run saw the 80 % stage widened 114 virtual minutes late instead of 10.)
    if (gen !== this.stageGen || this.closed) return;
    const started = open?.started ?? r.updated;
    if (reannounce) this.announce(r, stage.percent);
    const left = Math.max(0, started + stage.watchMs - this.clock.wallTime());
    this.armStage(r.id, r.stage, left);
    this.changed();
  }

  /**
   * End stage `idx` of release `id` in `ms`. Virtual time stands still while the log is asked
   * (the stage ends at the moment its watch does); a log that fails is asked again in 1 s.
   */
  private armStage(id: string, idx: number, ms: number): void {
    this.clearStageTimer();
    this.stageTimer = this.clock.setTimeout(() => {
      this.stageTimer = 0;
      const at = this.clock.wallTime();
      const release = this.options.virtualClock?.hold();
      this.stageDone(id, idx, at).catch(() => {
        if (!this.closed && !this.stageTimer) this.armStage(id, idx, 1000);
      }).finally(() => release?.());
    }, ms);
  }

  private async stageDone(id: string, idx: number, now: number): Promise<void> {
    const r = await this.log.release(id);
    if (!r || r.status !== "running" || this.closed) return;
    if (r.stage !== idx) return this.follow(r, false); // another controller widened it
    if (await this.evaluate()) return;
    const from = { status: r.status, stage: r.stage };
    const last = r.stage + 1 >= r.plan.length;
    const next: ReleaseRow = { ...r, stage: last ? r.stage : r.stage + 1, status: last ? "done" : "running", updated: now };
    const won = await this.transition(from, next, {
      ended: { idx: r.stage, at: now },
      ...(last ? {} : { started: { idx: next.stage, percent: next.plan[next.stage]!.percent, at: now } }),
    });
    if (won && !last) this.entered(next);
    else if (won) this.changed();
    else {
      const now2 = await this.log.release(id);
      if (now2) await this.follow(now2, false);
    }
  }

  /** Halt the running release if failures passed the threshold. True when it is halted. */
  private async evaluate(): Promise<boolean> {
    const r = await this.current();
    if (!r || r.status !== "running") return false;
    const failures = (await this.log.failures(r.id, r.version)).length - this.baseline.failures;
    const attempts = Math.max(1, (await this.log.attempts(r.id, r.version)) - this.baseline.attempts);
    if (failures >= this.thresholds.minFailures && failures / attempts > this.thresholds.maxFailureRate) {
      await this.halt(`${failures} of ${attempts} devices failed or rolled back (threshold ${Math.round(this.thresholds.maxFailureRate * 100)} %)`, true)
        .catch(() => undefined); // another controller halted it first
      return true;
    }
    return false;
  }

  /** Stop widening: re-sign at 0 % so no further device takes it. Throws USAGE when nothing runs. */
  async halt(reason = "halted by operator", flag = false): Promise<ReleaseRow> {
    const r = await this.current();
    if (!r || r.status !== "running") throw new OtaError("USAGE", "no running release to halt");
    const now = this.clock.wallTime();
    const next: ReleaseRow = { ...r, status: "halted", flagged: r.flagged || flag, reason, updated: now };
    if (!(await this.transition({ status: r.status, stage: r.stage }, next, { ended: { idx: r.stage, at: now } }))) {
      throw new OtaError("USAGE", "no running release to halt (another controller changed it)");
    }
    this.clearStageTimer();
    this.announce(next, 0);
    this.changed();
    return next;
  }

  /** Resume a halted release at its stage; failures so far are accepted. Throws USAGE. */
  async resume(): Promise<ReleaseRow> {
    const r = await this.current();
    if (!r || r.status !== "halted") throw new OtaError("USAGE", "no halted release to resume");
    const baseline = { failures: (await this.log.failures(r.id, r.version)).length, attempts: await this.log.attempts(r.id, r.version) };
    const now = this.clock.wallTime();
    const next: ReleaseRow = { ...r, status: "running", reason: null, updated: now };
    if (!(await this.transition({ status: r.status, stage: r.stage }, next, { started: { idx: r.stage, percent: r.plan[r.stage]!.percent, at: now } }))) {
      throw new OtaError("USAGE", "no halted release to resume (another controller changed it)");
    }
    this.baseline = baseline;
    this.entered(next);
    return (await this.log.release(r.id))!;
  }

  /**
   * Force the current release onto every known device of `group`: a manifest signed with
   * force: true and groups: [group], sent as a cmd to each. The devices still verify the
   * signature and every version/anti-rollback rule. Returns the device ids. Throws USAGE.
   */
  async force(group: string): Promise<string[]> {
    const r = await this.current();
    if (!r) throw new OtaError("USAGE", "no release to force");
    const env = this.sign(r, 100, { force: true, groups: [group] });
    const manifest = toBase64(env);
    const ids = (await this.log.devices()).filter((d) => d.groups.includes(group)).map((d) => d.id);
    for (const id of ids) this.publish(topics.cmd(id), controlMessage(this.commandKey(), "force", id, this.issued.next(), { manifest }), false);
    return ids;
  }

  /** Ask devices (all known, or a group) to check now. */
  /**
   * Per-update control: `cmd` signed for each device (the given ids, or every known device of
   * `group`) and sent on its cmd topic. Returns the device ids. Throws USAGE without a target.
   */
  async control(cmd: ControlCommand, target: { devices?: string[]; group?: string }): Promise<string[]> {
    const ids = target.devices?.length ? target.devices
      : target.group !== undefined ? (await this.log.devices()).filter((d) => d.groups.includes(target.group!)).map((d) => d.id)
      : undefined;
    if (!ids) throw new OtaError("USAGE", `${cmd} needs --device or --group`);
    for (const id of ids) this.publish(topics.cmd(id), controlMessage(this.commandKey(), cmd, id, this.issued.next()), false);
    return ids;
  }

  async checkNow(group?: string): Promise<string[]> {
    const ids = (await this.log.devices()).filter((d) => group === undefined || d.groups.includes(group)).map((d) => d.id);
    for (const id of ids) this.publish(topics.cmd(id), controlMessage(this.commandKey(), "check", id, this.issued.next()), false);
    return ids;
  }

  private scheduleSample(): void {
    const every = this.options.sampleEveryMs ?? 60_000;
    this.sampleTimer = this.clock.setTimeout(() => {
      void this.sampleNow().catch(() => {});
      if (!this.closed) this.scheduleSample();
    }, every);
  }

  /**
   * Record devices per version per group now (if anything changed). A controller that watches
   * no stage looks for a release another controller resumed or started, and follows it.
   */
  async sampleNow(): Promise<void> {
    if (!this.stageTimer) {
      const r = await this.current();
      if (r?.status === "running" && !this.stageTimer) await this.follow(r, false);
    }
    if (!this.dirty) return;
    this.dirty = false;
    await this.log.sample(this.clock.wallTime());
  }

  private clearStageTimer(): void {
    if (this.stageTimer) this.clock.clearTimeout(this.stageTimer);
    this.stageTimer = 0;
    this.stageGen++;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Disconnect (the persistent session keeps queuing events for the next start). Safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearStageTimer();
    if (this.sampleTimer) this.clock.clearTimeout(this.sampleTimer);
    if (this.reconnectTimer) this.clock.clearTimeout(this.reconnectTimer);
    if (this.flushRetry) this.clock.clearTimeout(this.flushRetry);
    this.client?.close();
    this.listeners.clear();
  }
}
