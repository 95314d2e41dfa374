/*
 * Pre-encrypted releases (issue 31) on Moddable's own runtime (moddable-host, x-cli-lin): the
 * agent decrypts with src/crypto.ts's ciphers over Moddable's crypt (rsa.js with CRT, curve.js's
 * dh, AES CTR + GHASH through modules/enc-gcm.ts), in the same Lab as the Node engine and xsnap's
 * XS, with the same configuration: as expected, and equal. Espressif's own files (RSA-3072,
 * ECIES-P256 from the eFuse HMAC key) with the signature required, and bad files with their codes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab } from "../../host-sim/lab/lab";
import { runScenario, checkOutcome, type Scenario } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import { runModdableScenario, comparable, FAST } from "../../host-sim/engines/moddable/scenarios";
import { encScenarios } from "../agent/encrypted-scenarios";

const byName = (name: string): Scenario => {
  const s = encScenarios.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name}`);
  return s;
};

describe.skipIf(skip !== undefined)("encrypted releases on Moddable's runtime (x-cli-lin)", { timeout: 240_000 }, () => {
  let lab: Lab;
  let program: string;
  const xs = createXsEngine();
  beforeAll(async () => {
    program = await built();
    lab = await Lab.create();
    await xs.prepared();
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await xs.close();
    await lab?.close();
  });

  for (const name of ["enc-esp-rsa", "enc-esp-ecc-hmac", "enc-ours-rsa", "enc-wrong-rsa", "enc-wrong-ecc", "enc-bad-body", "enc-truncated"]) {
    it(`${name}: ${byName(name).summary}`, async () => {
      const s = byName(name);
      const m = await runModdableScenario(s, lab, { program });
      const fast = { ...s, config: { ...FAST, ...s.config } };
      const n = await runScenario(fast, createNodeEngine(), lab);
      const x = await runScenario(fast, xs, lab);
      expect(checkOutcome(s, m), m.device.logs.slice(-12).join("\n")).toEqual([]);
      expect(comparable(m)).toEqual(comparable(n));
      expect(comparable(x)).toEqual(comparable(n));
    });
  }
});
