/*
 * The fuzz's verifiers: each runs the device code (modules/) on one input and says, in a plain
 * serialisable verdict, whether it was accepted (with the payload bytes it acted on) or refused
 * (with the code). Imports modules/ only: the same file runs under Node (test/security/fuzz.test.ts)
 * and bundled inside the real XS engine (test/security/xs-guest.ts), so the two engines' verdicts
 * compare string for string.
 */
import { OtaError, isErrorCode } from "../../modules/errors";
import { fromBase64, toHex, utf8Decode, utf8Encode } from "../../modules/bytes";
import { parseJsonBytes } from "../../modules/json";
import { MANIFEST_LIMITS } from "../../modules/manifest-fields";
import { RootStore, ROOT_LIMITS, verifyBundle } from "../../modules/roles";
import { checkFreshness, contentDigest } from "../../modules/freshness";
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
  /** Roles mode: base64 of root v1's envelope, the root the device ships (the root and bundle targets). */
  root?: string;
}

/** The roles targets' wall clock (ms), and the metaVersion the device accepted last for its product/channel. */
export const FUZZ_NOW = 1_766_000_000_000;
export const FUZZ_META = 1_765_500_000_000;

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

/** The stored root's payload, for a verdict ("" when none). */
/**
 * The root payload the device keeps (hex; "" when none): NVS holds it with each anchor's DER under
 * its own key and the anchor naming its hash (modules/roles.ts storedRoot); put back together here
 * as the signed compact JSON, so the oracle compares it with the originals' payloads.
 */
function storedRoot(store: StorePort): string {
  const s = store.get(DOMAINS.trust, "root");
  if (typeof s !== "string") return "";
  const doc = JSON.parse(s) as { anchors?: { id: string; sha?: string; der?: string; notAfter: number }[] };
  if (doc.anchors) doc.anchors = doc.anchors.map((a) => (a.sha === undefined ? a : { id: a.id, der: String(store.get(DOMAINS.trust, `a.${a.sha.slice(0, 12)}`)), notAfter: a.notAfter }));
  return toHex(utf8Encode(JSON.stringify(doc)));
}

/**
 * The root target's input: one root envelope, or (starting with "[") a JSON array of base64 root
 * envelopes, a rotation chain as a rollout bundle's "roots" carries it. (The harness's own decoding:
 * the device meets chains only inside a bundle, the bundle target's.)
 */
function chainOf(input: Uint8Array): Uint8Array[] {
  let i = 0;
  while (i < input.length && (input[i] === 0x20 || input[i] === 0x0a || input[i] === 0x0d || input[i] === 0x09)) i++;
  if (input[i] !== 0x5b) return [input];
  let doc: unknown;
  try {
    doc = parseJsonBytes(input, (MANIFEST_LIMITS.envelopeBytes * ROOT_LIMITS.chain * 4) / 3, 4, utf8Decode);
  } catch (e) {
    throw new OtaError("MANIFEST_SYNTAX", `chain: ${(e as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new OtaError("MANIFEST_FIELD", "chain: expected an array");
  return doc.map((x: unknown, k) => {
    if (typeof x !== "string") throw new OtaError("MANIFEST_FIELD", `chain[${k}]: expected base64`);
    try {
      return fromBase64(x);
    } catch {
      throw new OtaError("MANIFEST_FIELD", `chain[${k}]: not base64`);
    }
  });
}

/**
 * Root rotation (modules/roles.ts RootStore.rotate) on a device holding root v1 (setup.root) with
 * nothing in NVS yet: accepted = its current root changed, stored in NVS and still the current one
 * after a reboot (a new RootStore over the same NVS); signed = the stored root payload. A chain
 * that changes nothing is the pseudo-code UNCHANGED. A refusal must leave NVS without a root.
 */
export const rootTarget: Target = (input, ctx) => {
  const store = memStore();
  const v = guard(() => {
    const roots = new RootStore(store, ctx.setup.root!, ctx.crypto);
    const before = roots.current().version;
    const now = roots.rotate(chainOf(input), FUZZ_NOW);
    const stored = storedRoot(store);
    if (!stored) return now.version === before ? { ok: false, code: "UNCHANGED", detail: `root ${before}` } : { ok: false, code: "NON-OTA", detail: `root ${now.version} taken but not stored` };
    const rebooted = new RootStore(store, ctx.setup.root!, ctx.crypto).current();
    if (rebooted.version !== now.version || now.version === before) return { ok: false, code: "NON-OTA", detail: `root ${now.version} stored, ${rebooted.version} after a reboot (before: ${before})` };
    return { ok: true, signed: [stored], out: `root v${now.version}|keys=${now.keys.map((k) => k.id).join(",")}|anchors=${now.anchors.map((a) => a.id).join(",")}` };
  });
  const stored = storedRoot(store);
  if (!v.ok && stored) v.wrote = `root=${stored}`;
  return v;
};

/**
 * A rollout bundle (modules/roles.ts verifyBundle, then modules/freshness.ts checkFreshness, as the
 * agent runs them) on a device in roles mode holding root v1, which accepted metaVersion FUZZ_META
 * for its product/channel. Accepted: signed = [rollout payload, release payload, and the stored
 * root payload when the bundle rotated it]; out = the manifest the device acts on and its root.
 * A refusal that stored a root (the chain is applied before the rollout is checked) says so in `wrote`.
 */
export const bundleTarget: Target = (input, ctx) => {
  const store = memStore();
  store.set(DOMAINS.trust, "fresh", JSON.stringify({ [`${ctx.setup.product}/${ctx.setup.channel}`]: FUZZ_META }));
  const before = String(store.get(DOMAINS.trust, "fresh"));
  const v = guard(() => {
    const roots = new RootStore(store, ctx.setup.root!, ctx.crypto);
    const { manifest: m, root } = verifyBundle(input, roots, ctx.crypto, FUZZ_NOW);
    checkFreshness({ ...m, digest: contentDigest(m, ctx.crypto) }, ctx.setup, store, FUZZ_NOW);
    const outer = parseEnvelope(input, { envelopeBytes: ROOT_LIMITS.bundleBytes, payloadBytes: MANIFEST_LIMITS.payloadBytes });
    const wire = JSON.parse(utf8Decode(input)) as { release: string };
    const signed = [toHex(outer.payload), toHex(parseEnvelope(fromBase64(wire.release)).payload)];
    const stored = storedRoot(store);
    if (stored) signed.push(stored);
    const acted = {
      product: m.product, channel: m.channel, version: m.version, secureVersion: m.secureVersion, url: m.url, size: m.size, sha256: m.sha256,
      metaVersion: m.metaVersion, expires: m.expires, rollout: m.rollout, groups: m.groups, regions: m.regions, force: m.force, notBefore: m.notBefore,
    };
    return { ok: true, signed, out: `${JSON.stringify(acted)}|root v${root.version}|fresh=${String(store.get(DOMAINS.trust, "fresh"))}` };
  });
  const stored = storedRoot(store);
  const fresh = String(store.get(DOMAINS.trust, "fresh"));
  if (!v.ok && (stored || fresh !== before)) v.wrote = [stored ? `root=${stored}` : "", fresh !== before ? `fresh=${fresh}` : ""].filter((x) => x).join(";");
  return v;
};

/** The verifiers by name: a document type's entry (test/security/fuzz-docs.ts) names one. */
export const TARGETS = {
  manifest: manifestTarget,
  control: controlTarget,
  command: commandTarget,
  announcement: announcementTarget,
  root: rootTarget,
  bundle: bundleTarget,
} as const satisfies Record<string, Target>;

export type TargetName = keyof typeof TARGETS;
