import { describe, it, expect } from "vitest";
import { compareSemver, parseSemver, isSemver } from "../../modules/semver";

describe("modules/semver", () => {
  it("orders versions by semver 2.0 precedence (the spec's own example chain)", () => {
    const chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0"];
    for (let i = 0; i < chain.length; i++)
      for (let j = 0; j < chain.length; j++) expect(compareSemver(chain[i]!, chain[j]!)).toBe(i < j ? -1 : i > j ? 1 : 0);
  });
  it("ignores build metadata for precedence", () => {
    expect(compareSemver("1.2.3+build.5", "1.2.3+other")).toBe(0);
    expect(parseSemver("1.2.3-rc.1+sha.abc").build).toEqual(["sha", "abc"]);
  });
  it("rejects malformed versions with TypeError", () => {
    for (const bad of ["", "1", "1.2", "01.2.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3.4", " 1.2.3", "1.2.3-a..b", "9007199254740993.0.0", "1.2.3-" + "a".repeat(70)]) {
      expect(() => parseSemver(bad), bad).toThrow(TypeError);
      expect(isSemver(bad)).toBe(false);
    }
    expect(() => parseSemver(3 as unknown as string)).toThrow(TypeError);
  });
});
