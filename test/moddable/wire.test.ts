/*
 * Redirects and hosts that control every byte (host-sim/lab/redirect-scenarios.ts,
 * host-sim/lab/wire-scenarios.ts) on Moddable's own http client: http.js parses the status line,
 * the headers and the chunked framing there, not the agent, so each scenario's outcome on it
 * must still be the expected one and equal the Node engine's outcome (comparable(); that XS's
 * equals Node's for each is test/xs/scenarios.test.ts's).
 * Every hop's TLS is Moddable's securesocket: a redirect to a host of another CA fails there
 * unless the configuration names that CA (src/http.ts passes the hop's certificate).
 * A file of its own, so that it runs beside runtime.test.ts on another fork.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skip, program as built, BUILD_WAIT_MS } from "./built";
import { Lab } from "../../host-sim/lab/lab";
import { scenarios, runScenario, checkOutcome } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { runModdableScenario, comparable, FAST } from "../../host-sim/engines/moddable/scenarios";

const onTheWire = scenarios.filter((s) => s.name.startsWith("redirect-") || s.name.startsWith("wire-"));

describe.skipIf(skip !== undefined)("redirects and byte-controlled hosts on Moddable's http client (x-cli-lin)", { timeout: 120_000 }, () => {
  let lab: Lab;
  let program: string;
  beforeAll(async () => {
    program = await built();
    lab = await Lab.create();
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await lab?.close();
  });

  it("covers every redirect and wire scenario", () => {
    expect(onTheWire.length).toBeGreaterThanOrEqual(20);
  });

  it.each(onTheWire.map((s) => [s.name, s] as const))("%s: as expected, and as on Node", async (_name, s) => {
    const m = await runModdableScenario(s, lab, { program });
    const fast = { ...s, config: { ...FAST, ...s.config } };
    const n = await runScenario(fast, createNodeEngine(), lab);
    expect(checkOutcome(s, m), m.device.logs.slice(-12).join("\n")).toEqual([]);
    expect(comparable(m)).toEqual(comparable(n));
  });
});
