/*
 * Freshness (issue 29, item 2) on SIM's NVS: the highest metaVersion per product/channel is kept,
 * a lower one refused (MANIFEST_REPLAY), expired metadata refused, the channel checked; only a
 * new highest version costs an NVS write. End to end (the agent, HTTPS, both engines): the
 * scenarios replay-halted, wrong-channel and expired (host-sim/lab/scenarios.ts).
 */
import { describe, expect, it } from "vitest";
import { SimChip } from "../../host-sim/chip/chip";
import { checkFreshness, contentDigest, seenVersion } from "../../modules/freshness";
import { nodeCrypto } from "../../backend/crypto";
import { manifestFromJson } from "../../modules/manifest";
import { codeOf } from "../codes";
import type { StorePort, StoreValue } from "../../modules/ports";

const device = { product: "sensor", channel: "stable" };
const m = (metaVersion: number, o: Partial<{ channel: string; product: string; expires: number }> = {}) => ({ product: "sensor", channel: "stable", metaVersion, expires: Date.UTC(2027, 0, 1), ...o });
const now = Date.UTC(2026, 0, 1);

describe("metadata freshness", () => {
  it("keeps the highest version, refuses a lower one, writes NVS only for a new highest", () => {
    const store = SimChip.create({}).store();
    let writes = 0;
    const counted: StorePort = { get: store.get.bind(store), keys: store.keys.bind(store), delete: store.delete.bind(store), set: (d: string, k: string, v: StoreValue) => { writes++; store.set(d, k, v); } };
    checkFreshness(m(100), device, counted, now);
    expect(seenVersion(store, "sensor", "stable")).toBe(100);
    checkFreshness(m(100), device, counted, now); // the same document polled again
    expect(writes).toBe(1);
    expect(codeOf(() => checkFreshness(m(99), device, counted, now))).toBe("MANIFEST_REPLAY");
    expect(writes).toBe(1);
    checkFreshness(m(200), device, counted, now, false); // a forced manifest: checked, not recorded
    expect(seenVersion(store, "sensor", "stable")).toBe(100);
    checkFreshness(m(300), device, counted, now);
    expect(seenVersion(store, "sensor", "stable")).toBe(300);
    expect(codeOf(() => checkFreshness(m(299), device, counted, now))).toBe("MANIFEST_REPLAY");
    // another channel is its own lane
    checkFreshness(m(5, { channel: "beta" }), { product: "sensor", channel: "beta" }, counted, now);
    expect(seenVersion(store, "sensor", "beta")).toBe(5);
    expect(seenVersion(store, "sensor", "stable")).toBe(300);
  });

  it("refuses expired metadata, another channel and another product, before any write", () => {
    const store = SimChip.create({}).store();
    expect(codeOf(() => checkFreshness(m(10, { expires: now }), device, store, now))).toBe("MANIFEST_EXPIRED");
    expect(codeOf(() => checkFreshness(m(10, { channel: "beta" }), device, store, now))).toBe("MANIFEST_CHANNEL");
    expect(codeOf(() => checkFreshness(m(10, { product: "other" }), device, store, now))).toBe("POLICY_PRODUCT");
    expect(seenVersion(store, "sensor", "stable")).toBe(0);
    // the clock unknown (0): expiry cannot be judged, the version still is
    checkFreshness(m(10, { expires: 1 }), device, store, 0);
    expect(seenVersion(store, "sensor", "stable")).toBe(10);
  });

  it("metaVersion, expires and channel are mandatory fields", () => {
    const full = { schema: 1, product: "sensor", version: "1.0.0", secureVersion: 0, url: "https://h/x.bin", size: 1, sha256: "0".repeat(64), metaVersion: 1, expires: 2e12, channel: "stable" };
    expect(codeOf(() => manifestFromJson(full))).toBe("no error");
    for (const k of ["metaVersion", "expires", "channel"]) {
      const { [k]: _, ...rest } = full as Record<string, unknown>;
      expect(codeOf(() => manifestFromJson(rest)), k).toBe("MANIFEST_FIELD");
    }
    expect(codeOf(() => manifestFromJson({ ...full, metaVersion: 0 }))).toBe("MANIFEST_FIELD");
    expect(codeOf(() => manifestFromJson({ ...full, metaVersion: 1.5 }))).toBe("MANIFEST_FIELD");
  });

  it("an equal metaVersion passes only with the same content: another one is MANIFEST_CONFLICT, before any write", () => {
    const store = SimChip.create({}).store();
    let writes = 0;
    const counted: StorePort = { get: store.get.bind(store), keys: store.keys.bind(store), delete: store.delete.bind(store), set: (d: string, k: string, v: StoreValue) => { writes++; store.set(d, k, v); } };
    const a = { ...m(100), digest: "a".repeat(32) }, b = { ...m(100), digest: "b".repeat(32) };
    checkFreshness(a, device, counted, now);
    checkFreshness(a, device, counted, now); // polled again
    expect(writes).toBe(1);
    expect(codeOf(() => checkFreshness(b, device, counted, now))).toBe("MANIFEST_CONFLICT");
    expect(codeOf(() => checkFreshness(b, device, counted, now, false))).toBe("MANIFEST_CONFLICT"); // forced: checked too
    expect(writes).toBe(1);
    checkFreshness({ ...m(101), digest: "b".repeat(32) }, device, counted, now);
    expect(seenVersion(store, "sensor", "stable")).toBe(101);
    // a lane stored before digests were kept (a bare number): the equal version takes the digest once
    store.set("xsota.trust", "fresh", JSON.stringify({ "sensor/stable": 200 }));
    writes = 0;
    checkFreshness({ ...m(200), digest: "c".repeat(32) }, device, counted, now);
    checkFreshness({ ...m(200), digest: "c".repeat(32) }, device, counted, now);
    expect(writes).toBe(1);
    expect(codeOf(() => checkFreshness({ ...m(200), digest: "d".repeat(32) }, device, counted, now))).toBe("MANIFEST_CONFLICT");
  });

  it("contentDigest names the fields the device took: the same fields re-signed are the same content, one field changed is not", () => {
    const base = manifestFromJson({ schema: 1, product: "sensor", version: "1.0.0", secureVersion: 0, url: "https://h/x.bin", size: 1, sha256: "0".repeat(64), metaVersion: 7, expires: 2e12, channel: "stable", rollout: { id: "r", percent: 5 } });
    const reordered = manifestFromJson({ channel: "stable", expires: 2e12, metaVersion: 7, sha256: "0".repeat(64), size: 1, url: "https://h/x.bin", secureVersion: 0, version: "1.0.0", product: "sensor", schema: 1, rollout: { percent: 5, id: "r" } });
    const wider = manifestFromJson({ schema: 1, product: "sensor", version: "1.0.0", secureVersion: 0, url: "https://h/x.bin", size: 1, sha256: "0".repeat(64), metaVersion: 7, expires: 2e12, channel: "stable", rollout: { id: "r", percent: 100 } });
    expect(contentDigest(reordered, nodeCrypto)).toBe(contentDigest(base, nodeCrypto));
    expect(contentDigest(wider, nodeCrypto)).not.toBe(contentDigest(base, nodeCrypto));
    expect(contentDigest(base, nodeCrypto)).toMatch(/^[0-9a-f]{32}$/);
  });
});
