/*
 * The fuzz's verifiers: each runs the device code (modules/) on one input and says, in a plain
 * serialisable verdict, whether it was accepted (with the payload bytes it acted on) or refused
 * (with the code). Imports modules/ only: the same file runs under Node (test/security/fuzz.test.ts)
 * and bundled inside the real XS engine (test/security/xs-guest.ts), so the two engines' verdicts
 * compare string for string.
 */
import { OtaError, isErrorCode } from "../../modules/errors";
import { fromBase64, toHex, utf8Decode } from "../../modules/bytes";
import { parseEnvelope, verifyManifest } from "../../modules/manifest";
import { verifyControl } from "../../modules/control";
import { decodeCommand } from "../../modules/commands";
import { keyFromConfig, type KeyConfigInput, type TrustedKey } from "../../modules/keys";
import { startReporter, topics, type ReporterAgent } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { parseConfig, type AppConfig } from "../../modules/config";
import { DOMAINS } from "../../modules/nvs-domains";
import type { CryptoPort, HttpHandler, MqttHandler, Ports, StorePort, StoreValue } from "../../modules/ports";

/**
 * What one input came to. `signed`: hex of each signed payload the device acted on, in the target's
 * order. `wrote`: on a refusal, the NVS the device keeps for acceptances (the control commands'
 * replay guard, the last announcement handled) was written anyway.
 */
export type Verdict = { ok: true; signed: string[]; out: string; stored?: string } | { ok: false; code: string; detail: string; wrote?: string };

/** Serialisable: the same set-up is rebuilt inside XS. */
export interface TargetSetup {
  keys: KeyConfigInput[];
  deviceId: string;
  /** The control commands' replay guard as the device has it (NVS xsota.ctl/issued). */
  lastIssued: number;
  product: string;
  channel: string;
}

export interface TargetContext {
  setup: TargetSetup;
  keys: TrustedKey[];
  crypto: CryptoPort;
  config: AppConfig;
}

export type Target = (input: Uint8Array, ctx: TargetContext) => Verdict;

export function targetContext(setup: TargetSetup, crypto: CryptoPort): TargetContext {
  const config = parseConfig({
    product: setup.product,
    channel: setup.channel,
    manifestUrl: "https://updates.example/manifest.json",
    trustedKeys: setup.keys,
    checkIntervalMs: 0,
    mqtt: { host: "broker.example", port: 8883 },
  });
  return { setup, keys: setup.keys.map((k) => keyFromConfig(k, crypto)), crypto, config };
}

/** A Map-backed NVS (no limits needed here: nothing the targets write is large). */
function memStore(): StorePort {
  const data = new Map<string, StoreValue>();
  return {
    get: (d, k) => data.get(d + "/" + k),
    set: (d, k, v) => void data.set(d + "/" + k, v),
    delete: (d, k) => void data.delete(d + "/" + k),
    keys: (d) => {
      const out: string[] = [];
      data.forEach((_, key) => {
        if (key.startsWith(d + "/")) out.push(key.slice(d.length + 1));
      });
      return out;
    },
  };
}

function controlStore(ctx: TargetContext): StorePort {
  const s = memStore();
  s.set(DOMAINS.control, "issued", String(ctx.setup.lastIssued));
  return s;
}

/** Any throw -> a refusal: an OtaError by its code, anything else marked NON-OTA (the oracle's failure). */
function refused(e: unknown): Verdict {
  if (e instanceof OtaError && isErrorCode(e.code)) return { ok: false, code: e.code, detail: e.detail };
  return { ok: false, code: "NON-OTA", detail: String(e) + (e instanceof Error && e.stack ? " " + e.stack.split("\n").slice(0, 4).join(" | ") : "") };
}

function guard(run: () => Verdict): Verdict {
  try {
    return run();
  } catch (e) {
    return refused(e);
  }
}

/** A signed manifest envelope (modules/manifest.ts verifyManifest). */
export const manifestTarget: Target = (input, ctx) =>
  guard(() => {
    const r = verifyManifest(input, ctx.keys, ctx.crypto);
    return { ok: true, signed: [toHex(r.payload)], out: JSON.stringify(r.manifest) };
  });

/** The replay guard after the input: on an acceptance, what it holds; on a refusal that moved it, marked for the oracle. */
function guardKept(v: Verdict, store: StorePort, ctx: TargetContext): Verdict {
  const now = store.get(DOMAINS.control, "issued");
  if (v.ok) v.stored = String(now);
  else if (now !== String(ctx.setup.lastIssued)) v.wrote = `${DOMAINS.control}/issued = ${String(now)}`;
  return v;
}

/** A signed control envelope (modules/control.ts verifyControl), against a device that accepted `lastIssued`. */
export const controlTarget: Target = (input, ctx) => {
  const store = controlStore(ctx);
  return guardKept(guard(() => {
    const r = verifyControl(input, ctx.keys, ctx.crypto, ctx.setup.deviceId, store);
    return { ok: true, signed: [toHex(parseEnvelope(input).payload)], out: `${r.cmd}|${r.device}|${r.issued}` };
  }), store, ctx);
};

/** An MQTT message on devices/<id>/cmd (modules/commands.ts decodeCommand). Refusals are ANNOUNCE_INVALID, as the reporter reports them. */
export const commandTarget: Target = (input, ctx) => {
  const store = controlStore(ctx);
  return guardKept(guard(() => {
    const c = decodeCommand(input, ctx.keys, ctx.crypto, ctx.setup.deviceId, store);
    if (c.kind === "invalid") return { ok: false, code: "ANNOUNCE_INVALID", detail: c.detail };
    // What the device acted on: the signed control payload of the message's envelope, and the force's release.
    const msg = JSON.parse(utf8Decode(input)) as { envelope: string };
    const signed = [toHex(parseEnvelope(fromBase64(msg.envelope)).payload)];
    if (c.kind === "check" && c.manifest) signed.push(toHex(parseEnvelope(c.manifest).payload));
    return { ok: true, signed, out: c.kind === "check" ? `check|force=${c.force}` : `control|${c.cmd}` };
  }), store, ctx);
};

class CheckAgent implements ReporterAgent {
  running = { version: "1.0.0", secureVersion: 1, slot: 0, project: "fuzz" };
  checks: { force?: boolean; manifest?: Uint8Array }[] = [];
  check(o: { force?: boolean; manifest?: Uint8Array } = {}): Promise<unknown> {
    this.checks.push(o);
    return Promise.resolve({ state: "idle" });
  }
}

/**
 * A message on releases/<product>/<channel>, through the real reporter (modules/reporter.ts) on a
 * fresh device: accepted = the agent was asked to check with a release envelope. Refused = the
 * reporter's ANNOUNCE_INVALID event. Pseudo-codes: FETCH (a {"url"} announcement: the reporter
 * fetched it; the fetched bytes are the manifest target's), IGNORED (nothing done).
 */
export const announcementTarget: Target = (input, ctx) =>
  guard(() => {
    const store = memStore();
    const agent = new CheckAgent();
    let handler: MqttHandler | undefined;
    let fetched = "";
    let timers = 0;
    const ports: Ports = {
      flash: undefined as never,
      store,
      crypto: ctx.crypto,
      http: {
        request(o: { url: string }, h: HttpHandler) {
          fetched = o.url;
          h.onError("HTTP_CONNECT", "fuzz: no network");
          return { close() {} };
        },
      },
      clock: { now: () => 1000, wallTime: () => 1_700_000_000_000, setTimeout: () => ++timers, clearTimeout() {} },
      system: {
        restart() {},
        resetReason: () => "power-on",
        deviceId: () => ctx.setup.deviceId,
        hardwareRevision: () => "esp32-rev3",
        chipId: () => 0,
        freeHeap: () => 100_000,
        log() {},
      },
      mqtt: {
        connect(_o, h) {
          handler = h;
          let id = 0;
          return { publish: () => ++id, subscribe() {}, close() {} };
        },
      },
    };
    const outbox = new Outbox(store, { capacity: 16 });
    const reporter = startReporter(ports, ctx.config, agent, outbox);
    try {
      handler!.onReady();
      handler!.onMessage(topics.releases(ctx.setup.product, ctx.setup.channel), input);
    } finally {
      reporter.close();
    }
    const c = agent.checks[0];
    if (c) {
      if (!c.manifest) return { ok: false, code: "NON-OTA", detail: "a check without a release" };
      return { ok: true, signed: [toHex(parseEnvelope(c.manifest).payload)], out: `check|force=${c.force === true}|checks=${agent.checks.length}` };
    }
    const ann = store.get(DOMAINS.reporter, "ann");
    const wrote = ann === undefined ? {} : { wrote: `${DOMAINS.reporter}/ann = ${String(ann)}` };
    for (const seq of outbox.pendingSeqs()) {
      const e = JSON.parse(outbox.json(seq) ?? "{}") as { state?: string; code?: string; detail?: string };
      if (e.state === "refused") return { ok: false, code: e.code ?? "NON-OTA", detail: e.detail ?? "", ...wrote };
    }
    if (fetched) return { ok: false, code: "FETCH", detail: fetched, ...wrote };
    return { ok: false, code: "IGNORED", detail: "", ...wrote };
  });

/** The verifiers by name: a document type's entry (test/security/fuzz-docs.ts) names one. */
export const TARGETS = {
  manifest: manifestTarget,
  control: controlTarget,
  command: commandTarget,
  announcement: announcementTarget,
} as const satisfies Record<string, Target>;

export type TargetName = keyof typeof TARGETS;
