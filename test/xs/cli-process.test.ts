/*
 * `xsota device` as a user runs it: bin/xsota.js in a child process, on both engines, through
 * a cut (resumed, committed) and a failure (404). The process must end by itself with the
 * outcome's status (not 13, Node's "unsettled top-level await") and the flash must be saved.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { publicKeyPem } from "../../backend/release/keys";
import { SimChip } from "../../host-sim/chip/chip";
import { boot } from "../../host-sim/chip/bootloader";
import type { Fault } from "../../backend/update-host";

let lab: Lab;
let dir: string;
beforeAll(async () => {
  lab = await Lab.create();
  dir = mkdtempSync(join(tmpdir(), "xsota-cli-proc-"));
  writeFileSync(join(dir, "ca.pem"), lab.ca.caCertPem);
  writeFileSync(join(dir, "pub.pem"), publicKeyPem(lab.key));
});
afterAll(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

function xsota(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(__dirname, "../../bin/xsota.js"), ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout + stderr });
    });
  });
}

const cases: { name: string; fault: Fault[] | Fault; code: number; version: string }[] = [
  { name: "cut", fault: [{ kind: "cut-at", at: 20_000, times: 1 }], code: 0, version: "1.1.0" },
  { name: "404", fault: { kind: "not-found" }, code: 1, version: "1.0.0" },
];

describe("xsota device in a child process", () => {
  for (const engine of ["node", "xs"]) {
    for (const c of cases) {
      it(`${engine}: ${c.name} exits ${c.code} and saves the flash`, async () => {
        const rel = lab.publish(`proc-${engine}-${c.name}`, { image: { version: "1.1.0" } });
        lab.setFault(new URL(rel.imageUrl).pathname, c.fault);
        const flash = join(dir, `${engine}-${c.name}.bin`);
        lab.chip(FACTORY).save(flash);
        const r = await xsota(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--engine", engine]);
        expect(r.code, r.out).toBe(c.code);
        expect(r.out).toContain("flash saved to");
        const after = boot(SimChip.load(flash), {});
        expect(after.kind === "booted" && after.appDesc.version).toBe(c.version);
        if (c.name === "cut") expect(r.out).toMatch(/committed/);
      }, 120_000);
    }
  }
});
