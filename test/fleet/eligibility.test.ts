import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { rolloutBucket, checkEligibility, inWindow, inRollout, type EligibilityManifest } from "../../modules/eligibility";
import { sha256Crypto as crypto } from "./crypto-helper";

const ids = Array.from({ length: 10000 }, (_, i) => `dev-${i.toString(16).padStart(12, "0")}`);
const DAY = Date.UTC(2026, 0, 1);
const at = (h: number, m = 0) => DAY + (h * 60 + m) * 60000;

describe("rollout bucket", () => {
  it("is SHA-256 of `id:rollout`, first 4 bytes big-endian, mod 10000", () => {
    const d = createHash("sha256").update("a1b2c3d4e5f6:r-2026-01").digest();
    expect(rolloutBucket("a1b2c3d4e5f6", "r-2026-01", crypto)).toBe(d.readUInt32BE(0) % 10000);
  });

  it("is stable across calls and independent per rollout id", () => {
    const a = ids.slice(0, 200).map((id) => rolloutBucket(id, "r1", crypto));
    const b = ids.slice(0, 200).map((id) => rolloutBucket(id, "r1", crypto));
    const c = ids.slice(0, 200).map((id) => rolloutBucket(id, "r2", crypto));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    for (const x of a) expect(x >= 0 && x < 10000 && Number.isInteger(x)).toBe(true);
  });

  it("raising the percentage only adds devices (10,000 ids)", () => {
    const buckets = ids.map((id) => rolloutBucket(id, "rollout-7", crypto));
    let prev = new Set<string>();
    for (const pct of [0, 0.5, 1, 5, 10, 25, 50, 75, 99.99, 100]) {
      const m: EligibilityManifest = { rollout: { id: "rollout-7", percent: pct } };
      const cur = new Set(ids.filter((id, i) => {
        const r = checkEligibility(m, { id }, at(3), undefined, crypto);
        expect(r === null).toBe(inRollout(buckets[i]!, pct));
        return r === null;
      }));
      for (const id of prev) expect(cur.has(id)).toBe(true);
      expect(cur.size).toBeGreaterThanOrEqual(prev.size);
      prev = cur;
    }
    expect(prev.size).toBe(10000);
  });

  it("is roughly uniform: each percentage admits about that share, each decile about 1,000", () => {
    const buckets = ids.map((id) => rolloutBucket(id, "uniform", crypto));
    for (const pct of [5, 25, 50]) {
      const n = buckets.filter((b) => inRollout(b, pct)).length;
      expect(Math.abs(n - pct * 100)).toBeLessThan(4 * Math.sqrt(pct * 100) + 10);
    }
    const deciles = new Array(10).fill(0);
    for (const b of buckets) deciles[Math.floor(b / 1000)]++;
    let chi = 0;
    for (const c of deciles) chi += (c - 1000) ** 2 / 1000;
    expect(chi).toBeLessThan(27.9); // chi-square, 9 dof, p = 0.001
  });

  it("0% admits nobody; hostile percentages admit nobody or everybody, never crash", () => {
    expect(ids.slice(0, 500).some((id) => checkEligibility({ rollout: { id: "x", percent: 0 } }, { id }, at(1), undefined, crypto) === null)).toBe(false);
    expect(checkEligibility({ rollout: { id: "x", percent: NaN } }, { id: "d" }, at(1), undefined, crypto)).toBe("POLICY_ROLLOUT");
    expect(checkEligibility({ rollout: { id: "x", percent: -5 } }, { id: "d" }, at(1), undefined, crypto)).toBe("POLICY_ROLLOUT");
    expect(checkEligibility({ rollout: { id: "x", percent: 1e9 } }, { id: "d" }, at(1), undefined, crypto)).toBe(null);
    expect(() => rolloutBucket("", "x", crypto)).toThrow(TypeError);
    expect(() => rolloutBucket("d", "", crypto)).toThrow(TypeError);
  });

  it("handles non-ASCII ids as UTF-8", () => {
    const d = createHash("sha256").update("gerät-ü:r").digest();
    expect(rolloutBucket("gerät-ü", "r", crypto)).toBe(d.readUInt32BE(0) % 10000);
  });
});

describe("targeting", () => {
  const dev = { id: "d1", hardware: "esp32-rev3", region: "eu", groups: ["lab", "beta"] };
  it("hardware list", () => {
    expect(checkEligibility({ hardware: ["esp32-rev3", "esp32-rev1"] }, dev, at(1), undefined, crypto)).toBe(null);
    expect(checkEligibility({ hardware: ["esp32-rev1"] }, dev, at(1), undefined, crypto)).toBe("POLICY_HARDWARE");
    expect(checkEligibility({ hardware: ["esp32-rev3"] }, { id: "d2" }, at(1), undefined, crypto)).toBe("POLICY_HARDWARE");
    expect(checkEligibility({ hardware: [] }, dev, at(1), undefined, crypto)).toBe(null);
  });
  it("regions and groups", () => {
    expect(checkEligibility({ regions: ["eu"] }, dev, at(1), undefined, crypto)).toBe(null);
    expect(checkEligibility({ regions: ["us"] }, dev, at(1), undefined, crypto)).toBe("POLICY_GROUP");
    expect(checkEligibility({ regions: ["eu"] }, { id: "x" }, at(1), undefined, crypto)).toBe("POLICY_GROUP");
    expect(checkEligibility({ groups: ["beta"] }, dev, at(1), undefined, crypto)).toBe(null);
    expect(checkEligibility({ groups: ["prod"] }, dev, at(1), undefined, crypto)).toBe("POLICY_GROUP");
    expect(checkEligibility({ groups: ["prod"] }, { id: "x" }, at(1), undefined, crypto)).toBe("POLICY_GROUP");
  });
  it("force does not widen targeting", () => {
    expect(checkEligibility({ hardware: ["esp32-rev1"], force: true }, dev, at(1), undefined, crypto)).toBe("POLICY_HARDWARE");
    expect(checkEligibility({ groups: ["prod"], force: true }, dev, at(1), undefined, crypto)).toBe("POLICY_GROUP");
    expect(checkEligibility({ regions: ["us"], force: true }, dev, at(1), undefined, crypto)).toBe("POLICY_GROUP");
  });
});

describe("maintenance window versus force", () => {
  const night = { startMinute: 2 * 60, endMinute: 4 * 60 };
  const wrap = { startMinute: 23 * 60, endMinute: 60 };
  it("in and out of a window, including one that wraps midnight", () => {
    expect(inWindow(night, at(2))).toBe(true);
    expect(inWindow(night, at(3, 59))).toBe(true);
    expect(inWindow(night, at(4))).toBe(false);
    expect(inWindow(night, at(1, 59))).toBe(false);
    expect(inWindow(wrap, at(23, 30))).toBe(true);
    expect(inWindow(wrap, at(0, 30))).toBe(true);
    expect(inWindow(wrap, at(1))).toBe(false);
    expect(inWindow(wrap, at(12))).toBe(false);
    expect(inWindow({ startMinute: 0, endMinute: 1440 }, at(12))).toBe(true);
    expect(inWindow({ startMinute: 300, endMinute: 300 }, at(12))).toBe(true);
  });
  it("an unset clock is never inside a window", () => {
    expect(inWindow(night, 0)).toBe(false);
    expect(checkEligibility({}, { id: "d" }, 0, night, crypto)).toBe("POLICY_WINDOW");
    expect(checkEligibility({ force: true }, { id: "d" }, 0, night, crypto)).toBe(null);
  });
  it("outside the window only a forced release proceeds; no window means always", () => {
    expect(checkEligibility({}, { id: "d" }, at(12), night, crypto)).toBe("POLICY_WINDOW");
    expect(checkEligibility({}, { id: "d" }, at(3), night, crypto)).toBe(null);
    expect(checkEligibility({ force: true }, { id: "d" }, at(12), night, crypto)).toBe(null);
    expect(checkEligibility({}, { id: "d" }, at(12), undefined, crypto)).toBe(null);
  });
  it("force overrides the rollout percentage too, and force: false does not", () => {
    const out = ids.find((id) => checkEligibility({ rollout: { id: "r", percent: 5 } }, { id }, at(3), undefined, crypto) !== null)!;
    expect(checkEligibility({ rollout: { id: "r", percent: 5 } }, { id: out }, at(3), undefined, crypto)).toBe("POLICY_ROLLOUT");
    expect(checkEligibility({ rollout: { id: "r", percent: 5 }, force: false }, { id: out }, at(3), undefined, crypto)).toBe("POLICY_ROLLOUT");
    expect(checkEligibility({ rollout: { id: "r", percent: 5 }, force: true }, { id: out }, at(12), night, crypto)).toBe(null);
  });
  it("targeting is reported before rollout and window", () => {
    expect(checkEligibility({ hardware: ["x"], rollout: { id: "r", percent: 0 } }, { id: "d" }, at(12), night, crypto)).toBe("POLICY_HARDWARE");
    expect(checkEligibility({ rollout: { id: "r", percent: 0 } }, { id: "d" }, at(12), night, crypto)).toBe("POLICY_ROLLOUT");
  });
});
