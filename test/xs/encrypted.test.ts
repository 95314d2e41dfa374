/*
 * The encrypted-release scenarios (test/agent/encrypted-scenarios.ts, issue 31) in both engines:
 * modules/enc-*.ts run inside XS (SES lockdown), the ciphers bridged to Node's (host-sim/engines/xs/bridge.ts),
 * the HMAC/HKDF/PBKDF2 and the on-curve check in XS itself. The whole Outcome must be equal.
 */
import { describe, expect, it } from "vitest";
import { checkOutcome } from "../../host-sim/lab/scenarios";
import { inBothEngines } from "./helpers";
import { encScenarios } from "../agent/encrypted-scenarios";

const { both } = inBothEngines();

describe("encrypted releases: the same outcome in Node and in XS", () => {
  for (const s of encScenarios) {
    it(`${s.name}: ${s.summary}`, async () => {
      const { n, x } = await both(s);
      expect(checkOutcome(s, x, x.factoryApp0)).toEqual([]);
      expect(x).toEqual(n);
    });
  }
});
