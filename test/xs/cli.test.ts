/*
 * `xsota device --engine xs`: the CLI runs the firmware in the XS engine end to end (a flash
 * file, a release on a real HTTPS host), and the realtime mode works with it too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../cli/main";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { publicKeyPem } from "../../backend/release/keys";
import { SimChip } from "../../host-sim/chip/chip";
import { boot } from "../../host-sim/chip/bootloader";

let lab: Lab;
let dir: string;
beforeAll(async () => {
  lab = await Lab.create();
  dir = mkdtempSync(join(tmpdir(), "xsota-xs-cli-"));
  writeFileSync(join(dir, "ca.pem"), lab.ca.caCertPem);
  writeFileSync(join(dir, "pub.pem"), publicKeyPem(lab.key));
});
afterAll(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    return { code: await fn(), out: out.join("") };
  } finally {
    process.stdout.write = write;
    process.stderr.write = err;
  }
}

describe("xsota device --engine xs", () => {
  for (const realtime of [false, true]) {
    it(`updates, confirms and saves the flash${realtime ? " (--realtime)" : ""}`, async () => {
      const name = realtime ? "xs-cli-rt" : "xs-cli";
      const rel = lab.publish(name, { image: { version: "1.1.0" } });
      const flash = join(dir, `${name}.bin`);
      lab.chip(FACTORY).save(flash);
      const args = ["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--engine", "xs"];
      const { code, out } = await captured(() => main(realtime ? [...args, "--realtime"] : args));
      expect(code, out).toBe(0);
      expect(out).toMatch(/confirming[\s\S]*committed/);
      const after = boot(SimChip.load(flash), {});
      expect(after.kind === "booted" && after.appDesc.version).toBe("1.1.0");
    });
  }
});
