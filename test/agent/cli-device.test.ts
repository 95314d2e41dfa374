/*
 * xsota device end to end: a flash file, a release on a real HTTPS host, the CLI in-process.
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
import { startBroker } from "../../backend/mqtt/broker";
import { subscribe, realWait, expectRetainedVersion } from "../fleet/helpers";

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

  it.each(["node", "xs"])("--mqtt reports to a broker as a fleet device does (%s engine): the version on every boot, retained, and each event", async (engine) => {
    const broker = await startBroker({ kind: "aedes" });
    const id = engine === "node" ? "240ac40000a1" : "240ac40000a2";
    const live = subscribe(broker, `watch-${id}`, [`devices/${id}/#`]);
    try {
      await live.ready;
      const rel = lab.publish(`cli-mqtt-${engine}`, { image: { version: "1.1.0" } });
      const flash = join(dir, `flash-mqtt-${engine}.bin`);
      lab.chip(FACTORY).save(flash);
      const code = await quiet(() => main(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"),
        "--device-id", id, "--engine", engine, "--mqtt", `mqtt://${broker.host}:${broker.port}`]));
      expect(code, (quiet as { last?: string }).last).toBe(0);
      await realWait(() => live.messages.some((m) => m.topic.endsWith("/events") && JSON.parse(m.payload).state === "committed"), 10_000);
      const versions = live.messages.filter((m) => m.topic === `devices/${id}/version`).map((m) => m.payload);
      expect(versions).toContain("1.0.0");
      expect(versions.at(-1)).toBe("1.1.0");
      await expectRetainedVersion(broker, id, "1.1.0");
    } finally {
      live.client.close();
      await broker.close();
    }
  }, 60_000);

  it.each(["node", "xs"])("xsota provision: the device reports under the provisioned id, with the provisioned broker credentials (%s engine)", async (engine) => {
    const seen: { id: string; user?: string; ok: boolean }[] = [];
    const broker = await startBroker({
      kind: "aedes",
      authenticate: (id, user, pass) => {
        // The self-test's broker check (modules/diagnostics.ts) connects as <id>-diag without credentials.
        const ok = id.startsWith("watch-") || id.endsWith("-diag") || (user === `dev-${engine}` && pass === "s3cret");
        seen.push({ id, ok, ...(user !== undefined ? { user } : {}) });
        return ok;
      },
    });
    const id = `thermo-${engine}`;
    const live = subscribe(broker, `watch-prov-${engine}`, ["devices/#"]);
    try {
      await live.ready;
      const rel = lab.publish(`cli-prov-${engine}`, { image: { version: "1.1.0" } });
      const flash = join(dir, `flash-prov-${engine}.bin`);
      lab.chip(FACTORY).save(flash);
      expect(await quiet(() => main(["provision", "--flash", flash, "--id", id, "--groups", "lab", "--user", `dev-${engine}`, "--password", "s3cret"]))).toBe(0);
      // a user name other than the id is allowed (this broker has no ACL) but said
      expect((quiet as { last?: string }).last).toContain(`warning: MQTT user name dev-${engine} is not the device id ${id}`);
      const code = await quiet(() => main(["device", "--flash", flash, "--manifest", rel.manifestUrl, "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"),
        "--device-id", "240ac40000b1", "--engine", engine, "--mqtt", `mqtt://${broker.host}:${broker.port}`]));
      expect(code, (quiet as { last?: string }).last).toBe(0);
      await realWait(() => live.messages.some((m) => m.topic === `devices/${id}/events` && JSON.parse(m.payload).state === "committed"), 10_000);
      expect(live.messages.some((m) => m.topic.includes("240ac40000b1"))).toBe(false);
      expect(JSON.parse(live.messages.filter((m) => m.topic === `devices/${id}/state`).at(-1)!.payload).groups).toEqual(["lab"]);
      expect(seen).toContainEqual({ id, user: `dev-${engine}`, ok: true });
      expect(seen.filter((s) => !s.ok)).toEqual([]);
    } finally {
      live.client.close();
      await broker.close();
    }
  }, 60_000);

  it("--mqtt takes mqtt://HOST:PORT only", async () => {
    const flash = join(dir, "flash-mqtt-bad.bin");
    lab.chip(FACTORY).save(flash);
    for (const bad of ["mqtts://127.0.0.1:8883", "127.0.0.1:1883"]) {
      expect(await quiet(() => main(["device", "--flash", flash, "--manifest", "https://127.0.0.1/r.json", "--ca", join(dir, "ca.pem"), "--trust", join(dir, "pub.pem"), "--mqtt", bad]))).toBe(2);
      expect((quiet as { last?: string }).last).toMatch(/--mqtt/);
    }
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
