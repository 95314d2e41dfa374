/*
 * xsota device end to end: a flash file, a release on a real HTTPS host, the CLI in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../host-sim/cli/main";
import { Lab, FACTORY } from "../../host-sim/lab";
import { publicKeyPem } from "../../host-sim/release/keys";
import { SimChip } from "../../host-sim/chip";
import { boot } from "../../host-sim/bootloader";

let lab: Lab;
let dir: string;
beforeAll(async () => {
  lab = await Lab.create();
  dir = mkdtempSync(join(tmpdir(), "xsota-device-"));
  writeFileSync(join(dir, "ca.pem"), lab.ca.caCertPem);
  writeFileSync(join(dir, "pub.pem"), publicKeyPem(lab.key));
  writeFileSync(join(dir, "rogue.pem"), publicKeyPem(lab.rogue));
});
afterAll(async () => {
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stderr.write.bind(process.stderr);
  const out = process.stdout.write.bind(process.stdout);
  const captured: string[] = [];
  process.stderr.write = ((s: string) => { captured.push(String(s)); return true; }) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => { captured.push(String(s)); return true; }) as typeof process.stdout.write;
  return fn().finally(() => { process.stderr.write = write; process.stdout.write = out; }).then((v) => { (quiet as { last?: string }).last = captured.join(""); return v; });
}

describe("xsota device", () => {
  it("boots, updates, confirms and saves the flash", async () => {
    const rel = lab.publish("cli", { image: { version: "1.1.0" } });
    const flash = join(dir, "flash.bin");
    lab.chip(FACTORY).save(flash);
    const code = await quiet(() => main(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--json"]));
    const out = JSON.parse((quiet as { last?: string }).last!.slice((quiet as { last?: string }).last!.indexOf("{"))) as { final: string; running: { version: string } };
    expect(code).toBe(0);
    expect(out.final).toBe("committed");
    const after = boot(SimChip.load(flash), {});
    expect(after.kind === "booted" && after.appDesc.version).toBe("1.1.0");
  });

  it("--realtime runs the same update on the wall clock", async () => {
    const rel = lab.publish("cli-rt", { image: { version: "1.1.0" } });
    const flash = join(dir, "flash-rt.bin");
    lab.chip(FACTORY).save(flash);
    const code = await quiet(() => main(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--realtime"]));
    expect(code).toBe(0);
    expect((quiet as { last?: string }).last).toMatch(/confirming[\s\S]*committed/);
  });

  it("exits non-zero when the update is refused (untrusted key), flash unchanged", async () => {
    const rel = lab.publish("cli2", { image: { version: "1.1.0" } });
    const flash = join(dir, "flash2.bin");
    lab.chip(FACTORY).save(flash);
    const code = await quiet(() => main(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "rogue.pem")]));
    expect(code).toBe(1);
    expect((quiet as { last?: string }).last).toContain("SIG_UNKNOWN_KEY");
  });

  it("refuses http: and usage errors with their statuses", async () => {
    expect(await quiet(() => main(["device", "--flash", join(dir, "nope.bin"), "--manifest", "https://x", "--ca", "a", "--trust", "b"]))).toBe(3);
    const flash = join(dir, "flash3.bin");
    lab.chip(FACTORY).save(flash);
    expect(await quiet(() => main(["device", "--flash", flash, "--manifest", "http://127.0.0.1/r.json", "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem")]))).toBe(1);
    expect(await quiet(() => main(["device", "--flash", flash]))).toBe(2);
    expect(await quiet(() => main(["device", "--flash", flash, "--manifest", "https://127.0.0.1/r.json", "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--engine", "lua"]))).toBe(2);
  });
});
