import { describe, expect, it } from "vitest";
import { decide, chooseDelta, type PolicyFacts } from "../../modules/policy";
import { bootAction } from "../../modules/confirm";
import { backoffDelay, parseRetryAfter, seedOf, seededRandom } from "../../modules/backoff";
import { parseConfig } from "../../modules/config";
import { nodeCrypto } from "../../backend/crypto";
import type { Manifest } from "../../modules/manifest";

const config = parseConfig({ product: "p", manifestUrl: "https://h/r.json", trustedKeys: [{ type: "ecdsa-p256", spki: "AAAA" }], revokedVersions: ["1.3.0"], retry: { baseMs: 1000, maxMs: 60000, maxAttempts: 3 } });
const manifest: Manifest = { schema: 1, product: "p", version: "1.1.0", secureVersion: 2, url: "https://h/x.bin", size: 1000, sha256: "00".repeat(32), metaVersion: 1, expires: Date.UTC(2030, 0, 1), channel: "stable" };
const base: PolicyFacts = {
  manifest, config, running: { version: "1.0.0", secureVersion: 1, project: "p" }, pendingVerify: false, floor: 1, chipId: 0,
  deviceId: "d1", slotSize: 1 << 20, wallNow: Date.UTC(2026, 0, 1), tries: 0, rolledBack: false, force: false, crypto: nodeCrypto,
};
const f = (m: Partial<Manifest>, o: Partial<PolicyFacts> = {}) => decide({ ...base, ...o, manifest: { ...manifest, ...m } });

describe("policy table", () => {
  it("accepts a newer release", () => expect(f({})).toBeNull());
  it.each([
    ["busy", f({}, { pendingVerify: true }), "POLICY_BUSY"],
    ["product", f({ product: "q" }), "POLICY_PRODUCT"],
    ["revoked", f({ version: "1.3.0" }), "POLICY_REVOKED_VERSION"],
    ["rolled back here", f({}, { rolledBack: true }), "POLICY_ROLLED_BACK"],
    ["same version", f({ version: "1.0.0" }), "POLICY_NOT_NEWER"],
    ["older", f({ version: "0.9.0" }), "POLICY_NOT_NEWER"],
    ["prerelease of running", f({ version: "1.0.0-rc.1" }), "POLICY_NOT_NEWER"],
    ["secure version below floor", f({ secureVersion: 1 }, { floor: 2 }), "POLICY_DOWNGRADE"],
    ["secure version below running", f({ secureVersion: 0 }), "POLICY_DOWNGRADE"],
    ["min version", f({ minVersion: "1.0.5" }), "POLICY_MIN_VERSION"],
    ["chip", f({ chip: 9 }), "IMAGE_CHIP"],
    ["too large", f({ size: (1 << 20) + 1 }), "IMAGE_TOO_LARGE"],
    ["expired", f({ expires: Date.UTC(2025, 0, 1) }), "MANIFEST_EXPIRED"],
    ["not yet", f({ notBefore: Date.UTC(2027, 0, 1) }), "MANIFEST_NOT_YET"],
    ["attempt cap", f({}, { tries: 3 }), "POLICY_RETRY_CAP"],
    ["held after a network rollback", f({}, { rollbackHold: true }), "POLICY_ROLLBACK_BACKOFF"],
    ["network rollbacks at the cap", f({}, { networkRollbacks: 3, rolledBack: true }), "POLICY_ROLLBACK_CAP"],
    ["hardware", f({ hardware: ["esp32-rev1"] }), "POLICY_HARDWARE"],
    ["rollout 0%", f({ rollout: { id: "r", percent: 0 } }), "POLICY_ROLLOUT"],
  ])("refuses: %s", (_n, got, want) => expect(got).toBe(want));
  it("a release rolled back for a network cause is tried again under the cap; force skips the hold, not the cap", () => {
    expect(f({}, { networkRollbacks: 2 })).toBeNull();
    expect(f({}, { rollbackHold: true, force: true })).toBeNull();
    expect(f({}, { networkRollbacks: 3, force: true })).toBe("POLICY_ROLLBACK_CAP");
    expect(f({}, { networkRollbacks: 1, rolledBack: true })).toBe("POLICY_ROLLED_BACK");
  });
  it("force overrides rollout, window and the attempt cap, never versions", () => {
    expect(f({ rollout: { id: "r", percent: 0 } }, { force: true })).toBeNull();
    expect(f({}, { tries: 3, force: true })).toBeNull();
    expect(f({ version: "0.9.0" }, { force: true })).toBe("POLICY_NOT_NEWER");
    expect(f({ secureVersion: 0 }, { force: true })).toBe("POLICY_DOWNGRADE");
    const windowed = { ...config, maintenanceWindow: { startMinute: 60, endMinute: 120 } };
    expect(f({}, { config: windowed })).toBe("POLICY_WINDOW");
    expect(f({}, { config: windowed, force: true })).toBeNull();
  });
});

describe("delta choice", () => {
  const running = "11".repeat(32);
  const d = (version: string, sha256: string, size = 500, patch = 100) => ({ from: { version, size, sha256 }, url: "https://h/p.bin", size: patch, sha256: "22".repeat(32), compression: "none" as const });
  const hashed: number[] = [];
  const sha = (size: number) => {
    hashed.push(size);
    return size === 500 ? running : "33".repeat(32);
  };
  const pick = (deltas: Manifest["deltas"], c = config) => chooseDelta({ ...manifest, deltas }, c, { version: "1.0.0" }, 1 << 20, sha);

  it("takes the delta whose base is the running image, hashing only candidates of the running version", () => {
    hashed.length = 0;
    expect(pick([d("0.9.0", running), d("1.0.0", "44".repeat(32), 600), d("1.0.0", running)])).toEqual(d("1.0.0", running));
    expect(hashed).toEqual([600, 500]);
  });
  it.each([
    ["no deltas", undefined],
    ["another version", [d("0.9.0", running)]],
    ["another base of the same version", [d("1.0.0", "44".repeat(32))]],
    ["the same bytes, another length", [d("1.0.0", running, 501)]],
    ["a base larger than the slot", [d("1.0.0", running, (1 << 20) + 1)]],
  ])("full image: %s", (_n, deltas) => expect(pick(deltas)).toBeUndefined());
  it("config deltas: false always takes the full image", () => {
    expect(pick([d("1.0.0", running)], parseConfig({ product: "p", manifestUrl: "https://h/r.json", trustedKeys: [{ type: "ecdsa-p256", spki: "AAAA" }], deltas: false }))).toBeUndefined();
  });
});

describe("boot table", () => {
  it.each([
    ["pending", "none", "other", "self-test"],
    ["pending", "awaiting", "target", "self-test"],
    ["settled", "awaiting", "target", "report-committed"],
    ["settled", "awaiting", "other", "report-rollback"],
    ["settled", "switching", "other", "resume"],
    ["settled", "in-download", "other", "resume"],
    ["settled", "done", "other", "idle"],
    ["settled", "none", "other", "idle"],
  ] as const)("%s / %s / %s -> %s", (r, j, t, want) => expect(bootAction(r, j, t)).toBe(want));
});

describe("backoff", () => {
  it("grows exponentially with jitter, capped, deterministic per device", () => {
    const retry = { baseMs: 1000, maxMs: 8000, maxAttempts: 9 };
    const a = seededRandom(seedOf("dev-a"));
    const delays = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retry, a));
    delays.forEach((d, i) => {
      const exp = Math.min(8000, 1000 * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(exp / 2);
      expect(d).toBeLessThanOrEqual(exp);
    });
    const again = seededRandom(seedOf("dev-a"));
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retry, again))).toEqual(delays);
    const b = seededRandom(seedOf("dev-b"));
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retry, b))).not.toEqual(delays);
  });
  it("reads Retry-After as seconds or an HTTP date, capped", () => {
    expect(parseRetryAfter("7", 0)).toBe(7000);
    expect(parseRetryAfter("999999", 0)).toBe(3600_000);
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
