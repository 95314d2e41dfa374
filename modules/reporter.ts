/*
 * The device's MQTT side (topics in docs/fleet.md "Fleet"):
 *
 *   devices/<id>/online   "1" on connect, "0" by the will (retained, QoS 1)
 *   devices/<id>/version  running version, plain semver (retained)            -- as in the seed
 *   devices/<id>/state    JSON DeviceState (retained), on connect and after each result
 *   devices/<id>/events   one AuditEvent per message, QoS 1, from the outbox
 *   releases/<product>/<channel>  subscribed: a signed manifest envelope, or {"url": "https://..."}
 *   devices/<id>/cmd      subscribed: check, force, and the signed per-update control (modules/commands.ts)
 *
 * Delivery: the outbox (modules/outbox.ts) holds every event in NVS; the reporter publishes
 * pending events with QoS 1 and acks them in the outbox only on PUBACK. Moddable's client does
 * not retransmit, so whatever was unacknowledged when the link died is published again after
 * the reconnect; the receiver drops duplicates by (device, seq). Reconnects back off
 * exponentially with per-device jitter.
 *
 * Announcements: the signature is checked here (verifyManifest) so a forged or unsigned one is
 * ignored and reported (ANNOUNCE_INVALID); a valid one goes to agent.check(), whose policy does
 * every version, anti-rollback and eligibility check. An announcement identical to the last one
 * handled (a retained message redelivered on reconnect) is skipped. A "force" command relaxes
 * only the maintenance window and the rollout percentage, in the agent's policy; broker ACLs
 * must keep devices/+/cmd writable by the controller alone.
 */
import type { MqttClient, Ports } from "./ports";
import { brokerOptions, type AppConfig } from "./config";
import type { AgentState, AuditEvent } from "./events";
import type { Outbox } from "./outbox";
import { OtaError, codeOf, type ErrorCode } from "./errors";
import { utf8Decode, toHex } from "./bytes";
import { verifyManifest } from "./manifest";
import { keyFromConfig, type TrustedKey } from "./keys";
import { backoffDelay, seededRandom, seedOf } from "./backoff";
import { fetchSmall } from "./fleet-fetch";
import { MAX_COMMAND, MAX_JSON_DEPTH, decodeCommand } from "./commands";
import { jsonRefusal, parseJsonBytes } from "./json";
import { constant } from "./constant";
import { ROOT_LIMITS } from "./roles";
import { DOMAINS, LEGACY_DOMAINS, moveDomain } from "./nvs-domains";
import type { FleetFeature, Reporter, ReporterAgent } from "./features";

export type { Reporter, ReporterAgent } from "./features";

export interface LastResult {
  state: AgentState;
  to?: string;
  code?: ErrorCode;
  time: number;
}

/** The retained JSON on devices/<id>/state. */
export interface DeviceState {
  version: string;
  slot: number;
  secure_version: number;
  project?: string;
  hardware: string;
  region?: string;
  groups: string[];
  last: LastResult | null;
  online: true;
}


export interface ReporterOptions {
  /** QoS 1 events in flight at once (default 8). */
  maxInflight?: number;
  /** Reconnect backoff (default 1 s .. 60 s). */
  reconnect?: { baseMs: number; maxMs: number };
}

/** NVS domain "xsota.rep" (modules/nvs-domains.ts; "reporter" before, moved at start). */
const DOMAIN = DOMAINS.reporter;
const RESULT_STATES: readonly AgentState[] = constant(["committed", "rolled-back", "failed", "refused"]);
const MAX_ANNOUNCE = 8 * 1024;
/**
 * Packets from the broker over this end the connection before anything is allocated for them
 * (MqttConnectOptions.maxPacketBytes): the largest message the agent takes, with its topic.
 */
export const MAX_MQTT_PACKET = MAX_COMMAND + 512;
/**
 * Refusals kept in the outbox (NVS): a burst of this many, then one more per INVALID_REFILL_MS;
 * the others are counted in RAM and the count rides on the next one kept, so a broker that
 * floods junk costs a bounded number of NVS writes, not one per message.
 */
const INVALID_BURST = 8;
const INVALID_REFILL_MS = 10 * 60_000;

const BUSY_RETRY_MS = 5000;
const MAX_BUSY_RETRIES = 60;

export const topics = constant({
  online: (id: string) => `devices/${id}/online`,
  version: (id: string) => `devices/${id}/version`,
  state: (id: string) => `devices/${id}/state`,
  events: (id: string) => `devices/${id}/events`,
  cmd: (id: string) => `devices/${id}/cmd`,
  releases: (product: string, channel: string) => `releases/${product}/${channel}`,
});

/**
 * Connect to config.mqtt and start reporting. Throws TypeError when ports.mqtt or config.mqtt
 * is missing; connection failures are retried, never thrown. Handlers may raise STORE_* codes
 * from the outbox's store (a power cut in the simulator).
 */
export function startReporter(ports: Ports, config: AppConfig, agent: ReporterAgent, outbox: Outbox, options: ReporterOptions = {}): Reporter {
  const mqtt = ports.mqtt;
  const broker = config.mqtt;
  if (!mqtt || !broker) throw new TypeError("startReporter needs ports.mqtt and config.mqtt");
  const { clock, store, system, crypto } = ports;
  const id = system.deviceId();
  moveDomain(store, LEGACY_DOMAINS.reporter, DOMAIN);
  const maxInflight = options.maxInflight ?? 8;
  const backoff = { baseMs: options.reconnect?.baseMs ?? 1000, maxMs: options.reconnect?.maxMs ?? 60_000, maxAttempts: 1 };
  const random = seededRandom(seedOf(`mqtt:${id}`));
  // deploy/mosquitto/acl: a device writes only under devices/<its user name>/ (said once per boot)
  if (broker.username !== undefined && broker.username !== id) system.log(`reporter: MQTT user name ${broker.username} is not the device id ${id}: under deploy/mosquitto/acl the broker drops what this device publishes`);
  const keys: TrustedKey[] = [];
  for (const k of config.trustedKeys) {
    try {
      keys.push(keyFromConfig(k, crypto));
    } catch (e) {
      system.log(`reporter: trusted key skipped: ${(e as Error).message}`);
    }
  }

  let client: MqttClient | undefined;
  let ready = false;
  let closed = false;
  let attempt = 0;
  let timer = 0;
  /** packet id -> event seq */
  const inflight = new Map<number, number>();
  const sentSeqs = new Set<number>();
  let last = loadLast();
  let checking = false;
  let queued: { force: boolean; manifest?: Uint8Array } | undefined;
  let busyRetries = 0;
  let busyTimer = 0;
  const drainWaiters: Array<() => void> = [];
  function drained(): void {
    if (drainWaiters.length && (!ready || outbox.size === 0)) for (const w of drainWaiters.splice(0)) w();
  }

  function loadLast(): LastResult | null {
    const raw = store.get(DOMAIN, "last");
    if (typeof raw !== "string") return null;
    try {
      return JSON.parse(raw) as LastResult;
    } catch {
      return null;
    }
  }

  function state(): DeviceState {
    const r = agent.running;
    const s: DeviceState = {
      version: r.version,
      slot: r.slot,
      secure_version: r.secureVersion,
      hardware: config.hardware ?? system.hardwareRevision(),
      groups: config.groups ?? [],
      last,
      online: true,
    };
    if (r.project !== undefined) s.project = r.project;
    if (config.region !== undefined) s.region = config.region;
    return s;
  }

  function publishState(): void {
    if (ready && client) client.publish(topics.state(id), JSON.stringify(state()), { qos: 1, retain: true });
  }

  function connect(): void {
    timer = 0;
    if (closed) return;
    ready = false;
    const will = { topic: topics.online(id), payload: "0", qos: 1 as const, retain: true };
    const opts = brokerOptions(broker!, id);
    opts.will = will;
    opts.maxPacketBytes = MAX_MQTT_PACKET;
    client = mqtt!.connect(opts, {
      onReady() {
        if (closed) return;
        ready = true;
        attempt = 0;
        const c = client!;
        c.publish(topics.online(id), "1", { qos: 1, retain: true });
        c.publish(topics.version(id), agent.running.version, { qos: 1, retain: true });
        publishState();
        c.subscribe(topics.releases(config.product, config.channel));
        c.subscribe(topics.cmd(id));
        flush();
      },
      onMessage(topic, payload) {
        if (closed) return;
        if (topic === topics.cmd(id)) onCommand(payload);
        else if (topic === topics.releases(config.product, config.channel)) onAnnouncement(payload);
      },
      onPublished(packetId) {
        const seq = inflight.get(packetId);
        if (seq === undefined) return;
        inflight.delete(packetId);
        sentSeqs.delete(seq);
        outbox.ack(seq);
        flush();
        drained();
      },
      onClose(reason) {
        ready = false;
        client = undefined;
        inflight.clear();
        sentSeqs.clear();
        drained();
        if (closed) return;
        attempt++;
        const delay = backoffDelay(attempt, backoff, random);
        system.log(`reporter: ${reason}; reconnecting in ${delay} ms`);
        timer = clock.setTimeout(connect, delay);
      },
    });
  }

  function flush(): void {
    if (!ready || !client) return;
    for (const seq of outbox.pendingSeqs()) {
      if (inflight.size >= maxInflight) return;
      if (sentSeqs.has(seq)) continue;
      const json = outbox.json(seq);
      if (json === undefined) continue;
      const packetId = client.publish(topics.events(id), json, { qos: 1 });
      inflight.set(packetId, seq);
      sentSeqs.add(seq);
    }
  }

  function record(event: AuditEvent): void {
    if (RESULT_STATES.indexOf(event.state) < 0) return;
    last = { state: event.state, time: event.time };
    if (event.to !== undefined) last.to = event.to;
    if (event.code !== undefined) last.code = event.code;
    store.set(DOMAIN, "last", JSON.stringify(last));
    publishState();
  }

  let invalidTokens = INVALID_BURST;
  let invalidRefilledAt = clock.now();
  let invalidMuted = 0;
  function invalid(detail: string): void {
    const now = clock.now();
    const refill = Math.floor((now - invalidRefilledAt) / INVALID_REFILL_MS);
    if (refill > 0) {
      invalidTokens = Math.min(INVALID_BURST, invalidTokens + refill);
      invalidRefilledAt += refill * INVALID_REFILL_MS;
    }
    if (invalidTokens === 0) {
      invalidMuted++;
      return;
    }
    invalidTokens--;
    if (invalidMuted > 0) detail += ` (and ${invalidMuted} more refused since the last one kept)`;
    invalidMuted = 0;
    const e = outbox.append({ time: clock.wallTime(), uptime: clock.now(), state: "refused", from: agent.running.version, code: "ANNOUNCE_INVALID", detail });
    record(e);
    flush();
  }

  function runCheck(force: boolean, manifest?: Uint8Array): void {
    if (checking) {
      queued = manifest ? { force, manifest } : { force };
      return;
    }
    checking = true;
    const opts: { force?: boolean; manifest?: Uint8Array } = {};
    if (force) opts.force = true;
    if (manifest) opts.manifest = manifest;
    agent.check(opts).then(
      (out) => {
        // The agent was busy (its own boot check, a retry in progress): try again shortly, or the
        // announcement (already marked as seen) would be lost.
        const code = typeof out === "object" && out !== null ? (out as { code?: unknown }).code : undefined;
        if (code === "POLICY_BUSY" && busyRetries < MAX_BUSY_RETRIES && !closed) {
          busyRetries++;
          if (!queued) queued = manifest ? { force, manifest } : { force };
          busyTimer = clock.setTimeout(() => {
            busyTimer = 0;
            next();
          }, BUSY_RETRY_MS);
          return;
        }
        busyRetries = 0;
        next();
      },
      (e: unknown) => {
        system.log(`reporter: check failed: ${codeOf(e)}`);
        next();
      },
    );
  }

  function next(): void {
    checking = false;
    const q = queued;
    queued = undefined;
    if (q && !closed) runCheck(q.force, q.manifest);
  }

  /** Returns the envelope when it verifies, else reports ANNOUNCE_INVALID and returns undefined. */
  function verified(envelope: Uint8Array, what: string): Uint8Array | undefined {
    try {
      if (agent.trust) agent.trust.verifyRelease(envelope);
      else verifyManifest(envelope, keys, crypto);
      return envelope;
    } catch (e) {
      const code = codeOf(e);
      invalid(`${what}: ${code}${e instanceof OtaError && e.detail ? ` (${e.detail})` : ""}`);
      return undefined;
    }
  }

  function digest(bytes: Uint8Array): string {
    const h = crypto.sha256();
    h.write(bytes);
    return toHex(h.close().subarray(0, 8));
  }

  /** The last announcement refused, in RAM only: junk is never written to NVS ("ann" is a verified one's). */
  let refusedAnn = "";
  function onAnnouncement(payload: Uint8Array): void {
    if (payload.length === 0) return; // a cleared retained message
    const seen = digest(payload);
    if (store.get(DOMAIN, "ann") === seen || refusedAnn === seen) return;
    const refuse = (detail: string) => {
      refusedAnn = seen;
      invalid(detail);
    };
    if (payload.length > MAX_ANNOUNCE) return refuse(`announcement: ${payload.length} bytes`);
    let doc: unknown;
    try {
      doc = parseJsonBytes(payload, MAX_ANNOUNCE, MAX_JSON_DEPTH, utf8Decode);
    } catch (e) {
      return refuse(`announcement: ${jsonRefusal(e)}`);
    }
    const url = typeof doc === "object" && doc !== null && !("payload" in doc) ? (doc as { url?: unknown }).url : undefined;
    if (url === undefined) {
      const env = verified(payload, "announcement");
      if (!env) return void (refusedAnn = seen);
      store.set(DOMAIN, "ann", seen);
      runCheck(false, env);
      return;
    }
    if (typeof url !== "string" || !/^https:\/\//i.test(url)) return refuse("announcement: url must be https:");
    fetchSmall(ports.http, clock, url, agent.trust ? ROOT_LIMITS.bundleBytes : MAX_ANNOUNCE, config.download.stallMs).then(
      (bytes) => {
        if (closed) return;
        const env = verified(bytes, url);
        if (!env) return void (refusedAnn = seen);
        store.set(DOMAIN, "ann", seen);
        runCheck(false, env);
      },
      (e: unknown) => system.log(`reporter: announcement fetch failed: ${codeOf(e)}`),
    );
  }

  function onCommand(payload: Uint8Array): void {
    const c = agent.trust
      ? decodeCommand(payload, [], crypto, id, store, agent.trust)
      : decodeCommand(payload, keys, crypto, id, store);
    if (c.kind === "invalid") return invalid(c.detail);
    if (c.kind === "check") return runCheck(c.force, c.manifest);
    if (agent.command) agent.command(c.cmd);
    else invalid(`cmd ${c.cmd}: not supported by this agent`);
  }

  connect();

  return {
    onEvent(event: AuditEvent) {
      if (closed) return;
      record(event);
      flush();
    },
    get connected() {
      return ready;
    },
    drain(maxMs: number): Promise<void> {
      if (closed || !ready || outbox.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clock.clearTimeout(t);
          resolve();
        };
        const t = clock.setTimeout(finish, maxMs);
        drainWaiters.push(finish);
      });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const w of drainWaiters.splice(0)) w();
      if (timer) clock.clearTimeout(timer);
      if (busyTimer) clock.clearTimeout(busyTimer);
      timer = 0;
      const c = client;
      client = undefined;
      ready = false;
      c?.close();
    },
  };
}

/** The fleet feature as the app takes it (AppExtra.features; modules/features.ts). */
export const FLEET: FleetFeature = constant({ startReporter });
