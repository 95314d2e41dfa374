/*
 * Every end-to-end scenario of host-sim/lab/scenarios.ts, from its one definition, in both
 * engines: the Node engine and the real XS engine (modules/ bundled, SES lockdown, every port
 * bridged). The whole Outcome must be equal: running version and slot, boots and the version
 * of each, flash operation count, every audit event (state, code, from, to, progress), the
 * final result and code, both otadata entries, the SHA-256 of app0, app1 and otadata, and the
 * anti-rollback floor. (The power-cut sweeps are in power-cut.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { scenarios, checkOutcome } from "../../host-sim/lab/scenarios";
import { inBothEngines } from "./helpers";

const { both } = inBothEngines();

describe("every scenario: the same outcome in Node and in XS", () => {
  for (const s of scenarios) {
    it(`${s.name}: ${s.summary}`, async () => {
      const { n, x } = await both(s);
      expect(checkOutcome(s, x, x.factoryApp0)).toEqual([]);
      expect(x).toEqual(n);
    });
  }
});
