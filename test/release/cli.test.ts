import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { xsotaInProcess } from "./in-process-cli";
import { get } from "./https-client";

const xsota = xsotaInProcess;

/** A minimal ESP32 app image start: header, one segment header, esp_app_desc_t, then filler. */
function fakeImage(version: string, project: string, secureVersion: number, size = 50_000): Uint8Array {
  const b = new Uint8Array(size).map((_, i) => (i * 17) & 255);
  const dv = new DataView(b.buffer);
  b.fill(0, 0, 0x20 + 256);
  b[0] = 0xe9;
  b[1] = 1;
  b[2] = 2;
  b[3] = 0x20;
  dv.setUint32(4, 0x400d0000, true);
  dv.setUint16(12, 0, true);
  dv.setUint32(24, 0x3f400020, true);
  dv.setUint32(28, 0x100, true);
  dv.setUint32(0x20, 0xabcd5432, true);
  dv.setUint32(0x24, secureVersion, true);
  b.set(new TextEncoder().encode(version), 0x20 + 16);
  b.set(new TextEncoder().encode(project), 0x20 + 48);
  return b;
}

let dir: string;
const p = (f: string) => join(dir, f);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "xsota-cli-"));
  writeFileSync(p("fw.bin"), fakeImage("2.1.3", "sensor", 3));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("xsota release commands", () => {
  it("every command has --help; bad usage exits 2 and names the problem", async () => {
    for (const c of ["keygen", "sign", "verify", "manifest", "publish", "serve"]) {
      const r = await xsota(c, "--help");
      expect(r.code, c).toBe(0);
      expect(r.out).toMatch(/Usage: xsota/);
      expect(r.out).toMatch(/Examples:/);
    }
    const r = await xsota("sign", p("fw.bin"));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/USAGE.*--output/);
    expect((await xsota("keygen", "--type", "dsa", "-o", p("x.pem"))).code).toBe(2);
    expect((await xsota("verify", "--pub", p("nope.pem"), p("fw.bin"))).code).toBe(3);
  });

  it("keygen -> sign -> verify (v1 default and v2), tampering and a wrong key fail with exit 1", async () => {
    const k = await xsota("keygen", "-o", p("key.pem"), "--pub", p("pub.pem"), "--json");
    expect(k.code).toBe(0);
    const info = JSON.parse(k.out);
    expect(info.id).toMatch(/^[0-9a-f]{16}$/);
    expect(info.keyConfig).toMatchObject({ id: info.id, type: "ecdsa-p256" });
    expect(readFileSync(p("key.pem"), "utf8")).toMatch(/BEGIN EC PRIVATE KEY/);
    expect((await xsota("keygen", "-o", p("key.pem"))).code).toBe(2); // no silent overwrite
    expect((await xsota("keygen", "-o", p("other.pem"), "--pub", p("other.pub.pem"))).code).toBe(0);

    const s = await xsota("sign", "--key", p("key.pem"), p("fw.bin"), "-o", p("fw.signed.bin"), "--json");
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out)).toMatchObject({ scheme: "v1", outputBytes: 50_068 });
    const v = await xsota("verify", "--pub", p("pub.pem"), p("fw.signed.bin"), "--json");
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ kind: "image", valid: true, scheme: "v1", keyId: info.id, app: { project: "sensor", version: "2.1.3", secureVersion: 3 } });

    // The seed's espsecure spelling works too, and gives the same bytes (v1 is deterministic).
    expect((await xsota("sign", "--keyfile", p("key.pem"), "--output", p("fw.seed.bin"), p("fw.bin"))).code).toBe(0);
    expect(readFileSync(p("fw.seed.bin")).equals(readFileSync(p("fw.signed.bin")))).toBe(true);
    expect((await xsota("sign", "--scheme", "v2", "--key", p("key.pem"), "--key", p("other.pem"), p("fw.bin"), "-o", p("fw.v2.bin"))).code).toBe(0);
    expect((await xsota("verify", "--pub", p("other.pub.pem"), p("fw.v2.bin"))).out).toMatch(/v2/);

    const tampered = new Uint8Array(readFileSync(p("fw.signed.bin")));
    tampered[1000] ^= 4;
    writeFileSync(p("tampered.bin"), tampered);
    const t = await xsota("verify", "--pub", p("pub.pem"), p("tampered.bin"));
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/SIG_INVALID/);
    const w = await xsota("verify", "--pub", p("other.pub.pem"), p("fw.signed.bin"));
    expect(w.code).toBe(1);
    expect(w.err).toMatch(/SIG_INVALID/);
    const un = await xsota("verify", "--pub", p("pub.pem"), p("fw.bin"));
    expect(un.code).toBe(1);
    expect(un.err).toMatch(/SIG_MISSING/);
  });

  it("manifest reads the app descriptor, signs with ECDSA and RSA; verify checks it against the image; revocation", async () => {
    expect((await xsota("keygen", "--type", "rsa-2048", "-o", p("rsa.pem"), "--pub", p("rsa.pub.pem"))).code).toBe(0);
    const m = await xsota("manifest", "--image", p("fw.signed.bin"), "--url", "https://127.0.0.1:8443/", "--key", p("key.pem"), "--key", p("rsa.pem"),
      "--hardware", "esp32-rev3", "--groups", "lab", "--rollout-id", "r1", "--percent", "5", "--expires", "2027-06-01T00:00:00Z", "--channel", "stable", "-o", p("release.json"), "--json");
    expect(m.code, m.err).toBe(0);
    const out = JSON.parse(m.out);
    expect(out.manifest).toMatchObject({ product: "sensor", version: "2.1.3", secureVersion: 3, size: 50_068, chip: 0, signedImage: true, hardware: ["esp32-rev3"], rollout: { id: "r1", percent: 5 }, expires: Date.UTC(2027, 5, 1) });
    expect(out.manifest.url).toBe(`https://127.0.0.1:8443/images/${out.manifest.sha256}.bin`);
    const v = await xsota("verify", "--pub", p("rsa.pub.pem"), p("release.json"), "--image", p("fw.signed.bin"), "--json");
    expect(v.code, v.err).toBe(0);
    expect(JSON.parse(v.out).keyId).toBe(out.keyIds[1]);
    const wrongImage = await xsota("verify", "--pub", p("pub.pem"), p("release.json"), "--image", p("fw.bin"));
    expect(wrongImage.code).toBe(1);
    expect(wrongImage.err).toMatch(/DOWNLOAD_SIZE/);
    const revoked = await xsota("verify", "--pub", p("pub.pem"), "--revoked", out.keyIds[0], p("release.json"));
    expect(revoked.code).toBe(1);
    expect(revoked.err).toMatch(/SIG_REVOKED_KEY/);
    const bad = await xsota("manifest", "--image", p("fw.bin"), "--url", "https://x/", "--key", p("key.pem"), "--version", "banana", "-o", p("bad.json"));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/MANIFEST_FIELD: .*version/);
  });

  it("publish --dir, then the real binary serves it over HTTPS with a self-signed CA", async () => {
    const pub = await xsota("publish", "--dir", p("public"), "--pub", p("pub.pem"), p("release.json"), p("fw.signed.bin"), "--json");
    expect(pub.code, pub.err).toBe(0);
    const res = JSON.parse(pub.out);
    expect(res.latest).toBe("products/sensor/stable/latest.json");
    expect((await xsota("publish", "--dir", p("public"), p("release.json"))).code).toBe(2);
    const leak = await xsota("serve", "--dir", p("public"), "--self-signed-ca", p("public/ca"));
    expect(leak.code).toBe(2);
    expect(leak.err).toMatch(/CA key would be served/);

    const child = spawn(process.execPath, [join(__dirname, "../../bin/xsota.js"), "serve", "--dir", p("public"), "--port", "0", "--self-signed-ca", p("ca"), "--json", "--quiet"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    const info = await new Promise<{ url: string; ca: string }>((resolve, reject) => {
      const t = setInterval(() => {
        try {
          const j = JSON.parse(stdout);
          clearInterval(t);
          resolve(j);
        } catch {
          /* not yet */
        }
      }, 50);
      child.on("exit", (c) => reject(new Error(`serve exited ${c}`)));
    });
    try {
      const ca = readFileSync(info.ca, "utf8");
      const latest = await get(`${info.url}/${res.latest}`, ca);
      expect(latest.status).toBe(200);
      expect(Buffer.from(latest.body).equals(readFileSync(p("release.json")))).toBe(true);
      const part = await get(`${info.url}/${res.image}`, ca, { range: "bytes=50000-" });
      expect(part.status).toBe(206);
      expect(part.body.length).toBe(68);
      // A redirector in front of it (serve --redirect-to): 302 to the same path and query there.
      const front = spawn(process.execPath, [join(__dirname, "../../bin/xsota.js"), "serve", "--redirect-to", info.url, "--port", "0", "--self-signed-ca", p("ca"), "--json", "--quiet"], { stdio: ["ignore", "pipe", "pipe"] });
      let frontOut = "";
      front.stdout.on("data", (c: Buffer) => (frontOut += c.toString()));
      try {
        const f = await new Promise<{ url: string }>((resolve, reject) => {
          const t = setInterval(() => { try { resolve(JSON.parse(frontOut)); clearInterval(t); } catch { /* not yet */ } }, 50);
          front.on("exit", (c) => { clearInterval(t); reject(new Error(`serve --redirect-to exited ${c}`)); });
        });
        const moved = await get(`${f.url}/${res.latest}?sig=1`, ca);
        expect(moved.status).toBe(302);
        expect(moved.headers.location).toBe(`${info.url}/${res.latest}?sig=1`);
      } finally {
        const gone = new Promise<number | null>((r) => front.on("exit", (c) => r(c)));
        front.kill("SIGINT");
        expect(await gone).toBe(0);
      }
    } finally {
      const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    }
  });
});
