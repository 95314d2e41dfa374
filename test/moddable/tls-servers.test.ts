/*
 * Moddable's runtime (the x-cli-lin program's raw download through src/http.ts and
 * src/tls-chain.ts) against servers we did not write: OpenSSL's s_server and Python's ssl, each
 * sending the leaf alone and leaf + CA. SDK 8.2.3 alone failed every leaf-alone server (HTTP_TLS:
 * its verify() matches the host name only for certificates followed by another); the chain check
 * now holds a leaf alone to its validity, its subjectAltName and the pinned CA's signature. A leaf
 * another CA signed, or one of the pinned CA for another name, is still refused. Node, the same
 * servers: test/agent/tls-servers.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skip, program, BUILD_WAIT_MS } from "./built";
import { derBase64 } from "../../host-sim/engines/moddable/driver";
import { hasOpenssl, hasPython, makePki, startTlsServer, type Chain, type Pki } from "../tls-servers";

describe.skipIf(skip !== undefined || !hasOpenssl || !hasPython)("TLS on Moddable's runtime against OpenSSL's s_server and Python's ssl (leaf alone, leaf + CA)", () => {
  let pki: Pki, work: string;
  beforeAll(async () => {
    pki = await makePki();
    work = mkdtempSync(join(tmpdir(), "xsota-moddable-tls-servers-"));
    writeFileSync(join(work, "boot.json"), JSON.stringify({ ca: derBase64(pki.ca) }));
  }, BUILD_WAIT_MS);
  afterAll(() => {
    pki?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The program's raw download of `url`: { bytes, sha256, error? }. */
  async function raw(url: string): Promise<{ sha256: string; error?: string }> {
    const p = await program();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(p, ["--boot", join(work, "boot.json"), "--nvs", work, "--raw", url], { stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      const t = setTimeout(() => child.kill("SIGKILL"), 90_000); // a hang is a failure, not a stuck suite
      child.on("close", () => clearTimeout(t));
      child.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (text += d));
      child.on("error", reject);
      child.on("close", () => resolve(text));
    });
    const line = out.split("\n").find((l) => l.startsWith("@raw "));
    if (!line) throw new Error(`no @raw line: ${out}`);
    return JSON.parse(line.slice(5)) as { sha256: string; error?: string };
  }

  for (const kind of ["openssl", "python"] as const) {
    for (const chain of ["leaf", "leaf+ca"] as Chain[]) {
      it(`${kind}, ${chain}: the pinned CA's leaf is accepted; another CA's leaf and a leaf for another name are refused (HTTP_TLS)`, async () => {
        for (const [name, ok] of [["good", true], ["rogue", false], ["otherName", false]] as const) {
          const server = await startTlsServer(kind, pki, name, chain);
          try {
            const r = await raw(server.url);
            if (ok) {
              expect(r.error, name).toBeUndefined();
              expect(r.sha256).toBe(createHash("sha256").update(pki.body).digest("hex"));
            } else expect(r.error, name).toMatch(/^HTTP_TLS/);
          } finally {
            await server.close();
          }
        }
      }, BUILD_WAIT_MS + 120_000);
    }
  }
});
