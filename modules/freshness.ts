/*
 * Freshness of signed metadata (issue 29, item 2; TUF's rollback and freeze attacks):
 * - every manifest carries `metaVersion`, an integer that only grows per product and channel
 *   (the tools set it from the signing time, ms; the fleet controller's re-signings take
 *   max(now, last + 1)), and a mandatory `expires`;
 * - the device keeps the highest metaVersion it has accepted per product/channel in NVS
 *   (DOMAINS.trust, key "fresh": a small JSON object, at most MAX_LANES entries) and refuses a
 *   lower one: MANIFEST_REPLAY. An equal one is the same document polled again and passes;
 * - expired metadata is refused (MANIFEST_EXPIRED) when the wall clock is known (wallNow > 0);
 * - the manifest's channel must be the device's (MANIFEST_CHANNEL), its product the device's
 *   (POLICY_PRODUCT), checked before anything is stored so another product's manifest costs no write.
 * A new highest version costs one NVS write; the same or a refused one costs none.
 */
import { OtaError } from "./errors";
import type { StorePort } from "./ports";
import { DOMAINS } from "./nvs-domains";

const KEY = "fresh";
const MAX_LANES = 8;

export interface FreshnessFacts {
  product: string;
  channel: string;
  metaVersion: number;
  expires: number;
}

function lanes(store: StorePort): Record<string, number> {
  const raw = store.get(DOMAINS.trust, KEY);
  if (typeof raw !== "string") return {};
  try {
    const o = JSON.parse(raw) as unknown;
    if (typeof o !== "object" || o === null || Array.isArray(o)) return {};
    const out: Record<string, number> = {};
    for (const k of Object.keys(o)) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === "number" && Number.isInteger(v)) out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

/** The highest metaVersion accepted for product/channel, 0 when none. */
export function seenVersion(store: StorePort, product: string, channel: string): number {
  return lanes(store)[`${product}/${channel}`] ?? 0;
}

/**
 * Check a verified manifest's freshness against the device's product/channel and stored versions;
 * when it passes and `record` is set, store its metaVersion if higher. Throws POLICY_PRODUCT,
 * MANIFEST_CHANNEL, MANIFEST_REPLAY, MANIFEST_EXPIRED; STORE_* from the store.
 */
export function checkFreshness(m: FreshnessFacts, device: { product: string; channel: string }, store: StorePort, wallNow: number, record = true): void {
  if (m.product !== device.product) throw new OtaError("POLICY_PRODUCT", `${m.product}, this device runs ${device.product}`);
  if (m.channel !== device.channel) throw new OtaError("MANIFEST_CHANNEL", `signed for channel ${m.channel}, this device follows ${device.channel}`);
  const all = lanes(store);
  const lane = `${m.product}/${m.channel}`;
  const seen = all[lane] ?? 0;
  if (m.metaVersion < seen) throw new OtaError("MANIFEST_REPLAY", `metaVersion ${m.metaVersion} < ${seen} accepted before`);
  if (wallNow > 0 && wallNow >= m.expires) throw new OtaError("MANIFEST_EXPIRED", `expired at ${m.expires}, now ${wallNow}`);
  if (!record || m.metaVersion === seen) return;
  all[lane] = m.metaVersion;
  const keys = Object.keys(all);
  // bounded: drop the lowest lanes other than this one (a device changes channel rarely)
  while (keys.length > MAX_LANES) {
    let low = "";
    for (const k of keys) if (k !== lane && (low === "" || all[k]! < all[low]!)) low = k;
    delete all[low];
    keys.splice(keys.indexOf(low), 1);
  }
  store.set(DOMAINS.trust, KEY, JSON.stringify(all));
}
