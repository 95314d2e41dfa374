/*
 * Freshness of signed metadata (issue 29, item 2; TUF's rollback and freeze attacks):
 * - every manifest carries `metaVersion`, an integer that only grows per product and channel
 *   (the tools set it from the signing time, ms; the fleet controller's re-signings take
 *   max(now, last + 1)), and a mandatory `expires`;
 * - the device keeps the highest metaVersion it has accepted per product/channel in NVS
 *   (DOMAINS.trust, key "fresh": a small JSON object, at most MAX_LANES entries, each
 *   [metaVersion, first 32 hex digits of the content digest]; a bare number from before the
 *   digest was kept is read as a version without one) and refuses a lower one: MANIFEST_REPLAY.
 *   An equal one passes only with the same content (the same document polled again, or re-signed
 *   unchanged); the same version with other content is MANIFEST_CONFLICT (an online key that
 *   equivocates: TUF and Uptane take a version number as naming one document);
 * - expired metadata is refused (MANIFEST_EXPIRED) when the wall clock is known (wallNow > 0);
 * - the manifest's channel must be the device's (MANIFEST_CHANNEL), its product the device's
 *   (POLICY_PRODUCT), checked before anything is stored so another product's manifest costs no write.
 * A new highest version costs one NVS write; the same or a refused one costs none.
 */
import { OtaError } from "./errors";
import type { CryptoPort, StorePort } from "./ports";
import { toHex, utf8Encode } from "./bytes";
import { DOMAINS } from "./nvs-domains";

const KEY = "fresh";
const MAX_LANES = 8;

export interface FreshnessFacts {
  product: string;
  channel: string;
  metaVersion: number;
  expires: number;
  /** The content's digest (hex, contentDigest()); without it an equal version is not compared. */
  digest?: string;
}

/** Hex digits of the content digest kept per lane (128 bits). */
const DIGEST_HEX = 32;

/** A lane: the highest metaVersion accepted and its content digest ("" when not known). */
type Lane = [number, string];

function lanes(store: StorePort): Record<string, Lane> {
  const raw = store.get(DOMAINS.trust, KEY);
  if (typeof raw !== "string") return {};
  try {
    const o = JSON.parse(raw) as unknown;
    if (typeof o !== "object" || o === null || Array.isArray(o)) return {};
    const out: Record<string, Lane> = {};
    for (const k of Object.keys(o)) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === "number" && Number.isInteger(v)) out[k] = [v, ""];
      else if (Array.isArray(v) && typeof v[0] === "number" && Number.isInteger(v[0]) && typeof v[1] === "string") out[k] = [v[0], v[1]];
    }
    return out;
  } catch {
    return {};
  }
}

/** The highest metaVersion accepted for product/channel, 0 when none. */
export function seenVersion(store: StorePort, product: string, channel: string): number {
  return lanes(store)[`${product}/${channel}`]?.[0] ?? 0;
}

/**
 * The digest freshness compares at an equal metaVersion: SHA-256 of the verified manifest as the
 * device took it (JSON of its parsed fields, so a re-signing of the same fields is the same content;
 * in roles mode the release and rollout fields together).
 */
export function contentDigest(m: object, crypto: CryptoPort): string {
  const h = crypto.sha256();
  h.write(utf8Encode(JSON.stringify(m)));
  return toHex(h.close()).slice(0, DIGEST_HEX);
}

/**
 * Check a verified manifest's freshness against the device's product/channel and stored versions;
 * when it passes and `record` is set, store its metaVersion if higher. Throws POLICY_PRODUCT,
 * MANIFEST_CHANNEL, MANIFEST_REPLAY, MANIFEST_CONFLICT, MANIFEST_EXPIRED; STORE_* from the store.
 */
export function checkFreshness(m: FreshnessFacts, device: { product: string; channel: string }, store: StorePort, wallNow: number, record = true): void {
  if (m.product !== device.product) throw new OtaError("POLICY_PRODUCT", `${m.product}, this device runs ${device.product}`);
  if (m.channel !== device.channel) throw new OtaError("MANIFEST_CHANNEL", `signed for channel ${m.channel}, this device follows ${device.channel}`);
  const all = lanes(store);
  const lane = `${m.product}/${m.channel}`;
  const [seen, seenDigest] = all[lane] ?? [0, ""];
  const digest = m.digest ?? "";
  if (m.metaVersion < seen) throw new OtaError("MANIFEST_REPLAY", `metaVersion ${m.metaVersion} < ${seen} accepted before`);
  if (m.metaVersion === seen && seenDigest !== "" && digest !== "" && digest !== seenDigest) throw new OtaError("MANIFEST_CONFLICT", `metaVersion ${seen} was accepted with other content (${seenDigest.slice(0, 8)}, now ${digest.slice(0, 8)})`);
  if (wallNow > 0 && wallNow >= m.expires) throw new OtaError("MANIFEST_EXPIRED", `expired at ${m.expires}, now ${wallNow}`);
  // the same version and content polled again costs no write (nor does a digest already known)
  if (!record || (m.metaVersion === seen && (seenDigest !== "" || digest === ""))) return;
  all[lane] = [m.metaVersion, digest];
  const keys = Object.keys(all);
  // bounded: drop the lowest lanes other than this one (a device changes channel rarely)
  while (keys.length > MAX_LANES) {
    let low = "";
    for (const k of keys) if (k !== lane && (low === "" || all[k]![0] < all[low]![0])) low = k;
    delete all[low];
    keys.splice(keys.indexOf(low), 1);
  }
  store.set(DOMAINS.trust, KEY, JSON.stringify(all));
}
