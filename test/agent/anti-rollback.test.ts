/*
 * Issue 30, item 4: who holds the anti-rollback floor. config antiRollback "manifest" (ESP-IDF's
 * CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK off: every image carries secure_version 0, the floor is the
 * committed release's signed manifest secureVersion in NVS) or "efuse" (on: the image's
 * secure_version must be the manifest's, the eFuse rises). On a chip the build decides
 * (antiRollbackOfBuild over src/native's antiRollback()). End to end, in both engines:
 * host-sim/lab/scenarios.ts anti-rollback-* and secure-version-mismatch (test/agent/scenarios,
 * test/xs/scenarios); the verify check: test/agent/verify.test.ts.
 */
import { describe, expect, it } from "vitest";
import { antiRollbackOfBuild, parseConfig } from "../../modules/config";
import { decide, type PolicyFacts } from "../../modules/policy";
import { codeOf } from "../codes";

const key = { type: "ecdsa-p256", spki: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" };
const base = { product: "p", manifestUrl: "https://h/r.json", trustedKeys: [key] };

describe("config antiRollback", () => {
  it("is \"manifest\" unless set; \"efuse\" when set; anything else is CONFIG_INVALID", () => {
    expect(parseConfig(base).antiRollback).toBe("manifest");
    expect(parseConfig({ ...base, antiRollback: "efuse" }).antiRollback).toBe("efuse");
    expect(parseConfig({ ...base, antiRollback: "manifest" }).antiRollback).toBe("manifest");
    expect(codeOf(() => parseConfig({ ...base, antiRollback: true }))).toBe("CONFIG_INVALID");
    expect(codeOf(() => parseConfig({ ...base, antiRollback: "nvs" }))).toBe("CONFIG_INVALID");
  });

  it("on a chip follows the build's CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK; a config that says otherwise is CONFIG_INVALID", () => {
    expect(antiRollbackOfBuild(undefined, false)).toBe("manifest");
    expect(antiRollbackOfBuild(undefined, true)).toBe("efuse");
    expect(antiRollbackOfBuild("manifest", false)).toBe("manifest");
    expect(antiRollbackOfBuild("efuse", true)).toBe("efuse");
    expect(codeOf(() => antiRollbackOfBuild("efuse", false))).toBe("CONFIG_INVALID");
    expect(codeOf(() => antiRollbackOfBuild("manifest", true))).toBe("CONFIG_INVALID");
    expect(codeOf(() => antiRollbackOfBuild(1, true))).toBe("CONFIG_INVALID");
  });
});

describe("POLICY_DOWNGRADE against the floor", () => {
  const facts = (manifestSecure: number, floor: number, runningSecure: number): PolicyFacts => ({
    manifest: { product: "p", version: "2.0.0", secureVersion: manifestSecure, url: "https://h/fw.bin", size: 1024, sha256: "00".repeat(32) } as PolicyFacts["manifest"],
    config: parseConfig(base), running: { version: "1.0.0", secureVersion: runningSecure, project: "p" }, pendingVerify: false,
    floor, chipId: 0, deviceId: "d", slotSize: 1 << 20, wallNow: 0, tries: 0, rolledBack: false, force: false,
    crypto: { sha256: () => new Uint8Array(32) } as unknown as PolicyFacts["crypto"],
  });
  it("a real image without anti-rollback says 0: the NVS floor alone refuses", () => {
    expect(decide(facts(1, 2, 0))).toBe("POLICY_DOWNGRADE");
    expect(decide(facts(2, 2, 0))).not.toBe("POLICY_DOWNGRADE");
  });
  it("with anti-rollback the running image's secure_version (>= the eFuse, or the bootloader would not boot it) refuses too", () => {
    expect(decide(facts(1, 0, 2))).toBe("POLICY_DOWNGRADE");
  });
});
