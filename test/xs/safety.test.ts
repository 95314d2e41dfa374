/*
 * modules/ is XS-safe: (1) an AST check over every file finds no Node module, no Node/DOM
 * global, no host timer, no TextEncoder; (2) host-sim/engines/firmware.ts + modules/ bundle for XS
 * (esbuild, platform neutral) and the bundle evaluates inside the real XS worker under SES
 * lockdown; (3) the build FAILS when a file reaches for a Node module, Buffer, process or
 * require. (Type level: tsconfig.device.json checks modules/ without Node types in npm test.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSource } from "../../host-sim/engines/xs/xs-safety";
import { bundleFirmware, ROOT, XsSafetyError } from "../../host-sim/engines/xs/bundle";
import { prepare } from "../../host-sim/engines/xs/snapshot";
import { XsWorker } from "../../host-sim/engines/xs/worker";
import { Ev } from "../../host-sim/engines/xs/protocol";

const MODULES = join(ROOT, "modules");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "xsota-safety-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("modules/ reaches for nothing but its ports", () => {
  it("every file of modules/ passes the AST check", () => {
    const files = readdirSync(MODULES).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(10);
    const findings = files.flatMap((f) => checkSource(`modules/${f}`, readFileSync(join(MODULES, f), "utf8")));
    expect(findings).toEqual([]);
  });

  it("the check finds each kind of host reach, and ignores property names, types and locals", () => {
    const src = [
      `import { readFileSync } from "node:fs";`,
      `import x from "events";`,
      `import y from "some-package";`,
      `const a = Buffer.from("x");`,
      `if (process.env.X) require("y");`,
      `setTimeout(() => {}, 1);`,
      `const t = new TextEncoder();`,
      `const now = Date.now();`,
      `const ok = { Buffer: 1, process: 2 }; ok.process; type T = typeof URL;`,
      `function f(setImmediate: number) { return setImmediate; }`,
    ].join("\n");
    const what = checkSource("bad.ts", src).map((f) => `${f.line}:${f.what}`);
    expect(what).toEqual([
      "1:imports Node module 'node:fs'",
      "2:imports Node module 'events'",
      "3:imports 'some-package' (device code may import only its own relative modules)",
      "4:uses the host global 'Buffer'",
      "5:uses the host global 'process'",
      "5:uses the host global 'require'",
      "6:uses the host global 'setTimeout'",
      "7:uses the host global 'TextEncoder'",
      "8:uses 'Date.now' (time and randomness come through ports)",
    ]);
  });
});

describe("the XS bundle", () => {
  it("host-sim/engines/firmware.ts and modules/ bundle with no Node builtins and evaluate under SES lockdown in XS", async () => {
    const p = await prepare();
    expect(p.bundle.inputs.some((f) => f.startsWith("modules/"))).toBe(true);
    expect(p.bundle.inputs).toContain("host-sim/engines/firmware.ts");
    expect(p.bundle.inputs.every((f) => f.startsWith("modules/") || f.startsWith("host-sim/engines/"))).toBe(true);
    const worker = new XsWorker({ snapshot: p.snapshot });
    try {
      const r = await worker.command(Uint8Array.of(Ev.PROBE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
      const facts = JSON.parse(Buffer.from(r.reply).toString("utf8"));
      expect(facts).toMatchObject({ lockdown: true, frozenIntrinsics: true, absent: [] });
      // Lockdown is real: an intrinsic cannot be changed.
      const t = await worker.evaluate(`(() => { try { Array.prototype.push = null; return "mutable"; } catch (e) { return "frozen"; } })() === "frozen" ? new ArrayBuffer(1) : new ArrayBuffer(2)`);
      expect(t.reply.byteLength).toBe(1);
    } finally {
      await worker.terminate();
    }
  });

  const bad: Array<[string, string, RegExp]> = [
    ["node-module", `import { readFileSync } from "node:fs"; export function bootFirmware() { readFileSync("x"); return { close() {} }; }`, /imports Node module 'node:fs'/],
    ["buffer", `export function bootFirmware() { Buffer.from("x"); return { close() {} }; }`, /host global 'Buffer'/],
    ["process", `export function bootFirmware() { if (process.env.DEBUG) {} return { close() {} }; }`, /host global 'process'/],
    ["require", `export function bootFirmware() { require("fs"); return { close() {} }; }`, /host global 'require'/],
    ["package", `import mqtt from "mqtt-packet"; export function bootFirmware() { return { close: () => mqtt }; }`, /imports 'mqtt-packet'/],
  ];
  for (const [name, text, why] of bad) {
    it(`the build fails when the firmware reaches for ${name}`, async () => {
      const file = join(dir, `${name}.ts`);
      writeFileSync(file, text);
      const err = await bundleFirmware(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(XsSafetyError);
      expect((err as Error).message).toMatch(why);
    });
  }
});
