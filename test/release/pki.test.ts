/*
 * The test PKI and Moddable's TLS: about 1 ECDSA certificate in 256 has a signature whose r has a
 * leading zero byte, which Moddable SDK 8.2.3's ssl_cert.js misreads (release/pki.ts
 * moddableTlsDefect; on the real runtime: test/moddable/runtime.test.ts). Certificates made here
 * are re-signed until fine (CA and leaf); `xsota serve --cert` warns about a chain that has one.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "../../backend/release/reflect-shim";
import * as x509 from "@peculiar/x509";
import { chainTlsDefects, ecdsaSignature, makeCa, makeServerCert, moddableTlsDefect, pemCertificates } from "../../backend/release/pki";

const BIN = join(__dirname, "../../bin/xsota.js");
const der = (pem: string) => new Uint8Array(new x509.X509Certificate(pem).rawData);

describe("the PKI against Moddable's ECDSA certificate check", () => {
  const dir = mkdtempSync(join(tmpdir(), "xsota-pki-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // One search for a misread signature (about 256 signings) serves both tests.
  let oddLeaf: Promise<{ certPem: string; keyPem: string }> | undefined;
  const odd = () => (oddLeaf ??= makeCa().then((ca) => makeServerCert(ca, { moddableDefect: true })));

  it("names a certificate whose signature's r is short, and only that", async () => {
    const ca = await makeCa();
    const bad = await odd();
    const leaf = pemCertificates(bad.certPem)[0]!;
    expect(ecdsaSignature(der(leaf))!.r.length).toBeLessThan(32);
    expect(moddableTlsDefect(der(leaf))).toMatch(/r has \d+ bytes, not 32: Moddable's TLS/);
    expect(chainTlsDefects(bad.certPem)).toEqual([expect.stringMatching(/^certificate 1 of 2 \(CN=127\.0\.0\.1\): its ECDSA signature's r.*every Moddable device refuses this host \(HTTP_TLS\)/)]);
    // The same in the CA's self-signature (the last certificate of the chain): every device refuses the host.
    const badCa = await makeCa(undefined, "odd CA", { moddableDefect: true });
    const chain = (await makeServerCert(badCa)).certPem;
    expect(chainTlsDefects(chain)).toEqual([expect.stringMatching(/^certificate 2 of 2 \(CN=odd CA\): .*every Moddable device refuses this host \(HTTP_TLS\)/)]);
    // A short s alone is read right: only r decides.
    for (let i = 0; i < 40; i++) {
      const ok = await makeServerCert(ca);
      const { r: r2, s: s2 } = ecdsaSignature(der(pemCertificates(ok.certPem)[0]!))!;
      expect(r2.length).toBe(32);
      expect(s2.length).toBeLessThanOrEqual(32);
      expect(chainTlsDefects(ok.certPem)).toEqual([]); // leaf and CA both
    }
  });

  it("xsota serve --cert warns about a chain Moddable devices would refuse", async () => {
    const bad = await odd();
    writeFileSync(join(dir, "chain.pem"), bad.certPem);
    writeFileSync(join(dir, "key.pem"), bad.keyPem);
    const child = spawn(process.execPath, [BIN, "serve", "--dir", dir, "--port", "0", "--cert", join(dir, "chain.pem"), "--key", join(dir, "key.pem"), "--json", "--quiet"], { env: { ...process.env, NO_COLOR: "1" } });
    let err = "";
    let out = "";
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes('"url"')) resolve();
      });
      child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    child.kill();
    expect(err).toMatch(/^warning: certificate 1 of 2 \(CN=127\.0\.0\.1\): its ECDSA signature's r has \d+ bytes.*Moddable/m);
  });
});
