/*
 * HTTPS servers we did not write, for the TLS chain tests on Node (test/agent/tls-servers.test.ts)
 * and Moddable's runtime (test/moddable/tls-servers.test.ts): OpenSSL's `openssl s_server -HTTP`
 * and Python's http.server wrapped by its `ssl` module, each serving a file from a fresh dir with
 * the leaf alone or leaf + CA. Certificates are made here at test time (backend/release/pki.ts).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeCa, makeServerCert, pemCertificates } from "../backend/release/pki";
import { freePort } from "../backend/mqtt/broker";

export const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
export const hasPython = spawnSync("python3", ["-c", "import ssl, http.server"]).status === 0;

export type ServerKind = "openssl" | "python";
/** What the server sends: its leaf alone, or the leaf then the CA. */
export type Chain = "leaf" | "leaf+ca";

export interface Pki {
  dir: string;
  /** The pinned CA (PEM). */
  ca: string;
  /** The CA of the "rogue" certificate (PEM). */
  otherCa: string;
  body: Buffer;
  /** cert/key files: "good" (for 127.0.0.1, by the pinned CA), "rogue" (for 127.0.0.1, by another CA), "otherName" (by the pinned CA, for other.example only). */
  files(name: "good" | "rogue" | "otherName", chain: Chain): { cert: string; key: string; chain?: string };
  close(): void;
}

export async function makePki(): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), "xsota-tls-servers-"));
  const ca = await makeCa();
  const otherCa = await makeCa(undefined, "someone else's CA");
  const certs = {
    good: { cert: await makeServerCert(ca, { hosts: ["127.0.0.1"] }), ca },
    rogue: { cert: await makeServerCert(otherCa, { hosts: ["127.0.0.1"] }), ca: otherCa },
    otherName: { cert: await makeServerCert(ca, { hosts: ["other.example"] }), ca },
  };
  for (const [name, { cert, ca: issuer }] of Object.entries(certs)) {
    writeFileSync(join(dir, `${name}.key`), cert.keyPem);
    writeFileSync(join(dir, `${name}.leaf.pem`), pemCertificates(cert.certPem)[0]!);
    writeFileSync(join(dir, `${name}.ca.pem`), issuer.caCertPem);
    writeFileSync(join(dir, `${name}.full.pem`), cert.certPem);
  }
  const body = randomBytes(24 * 1024);
  mkdirSync(join(dir, "www"));
  writeFileSync(join(dir, "www", "image.bin"), body);
  // s_server -HTTP sends a file as the whole response, head included. (-WWW sends no Content-Length
  // and ends the body by closing: Moddable's http.js then never completed, after "SSL: close notify".)
  writeFileSync(join(dir, "www", "image.http"), Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
  return {
    dir, ca: ca.caCertPem, otherCa: otherCa.caCertPem, body,
    files: (name, chain) => ({
      cert: join(dir, `${name}.${chain === "leaf" ? "leaf" : "full"}.pem`),
      key: join(dir, `${name}.key`),
      ...(chain === "leaf+ca" ? { chain: join(dir, `${name}.ca.pem`) } : {}),
    }),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsServer {
  kind: ServerKind;
  port: number;
  url: string;
  close(): Promise<void>;
}

const PY = `
import http.server, ssl, sys, functools
cert, key, root = sys.argv[1], sys.argv[2], sys.argv[3]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
handler.func.log_message = lambda *a: None
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
`;

/**
 * Start `kind` serving pki's www dir with cert set `name`. openssl: `-cert` the leaf, `-cert_chain`
 * the CA for leaf + CA; python: load_cert_chain of the leaf file, or of leaf + CA in one file.
 */
export async function startTlsServer(kind: ServerKind, pki: Pki, name: "good" | "rogue" | "otherName", chain: Chain): Promise<TlsServer> {
  const f = pki.files(name, chain);
  let child: ChildProcess;
  let port: number;
  if (kind === "openssl") {
    port = await freePort();
    const args = ["s_server", "-quiet", "-HTTP", "-accept", `127.0.0.1:${port}`, "-cert", chain === "leaf" ? f.cert : pki.files(name, "leaf").cert, "-key", f.key];
    if (f.chain) args.push("-cert_chain", f.chain);
    child = spawn("openssl", args, { cwd: join(pki.dir, "www"), stdio: ["pipe", "ignore", "pipe"] });
    await listening(port, child);
  } else {
    child = spawn("python3", ["-c", PY, f.cert, f.key, join(pki.dir, "www")], { stdio: ["ignore", "pipe", "pipe"] });
    port = await new Promise<number>((resolve, reject) => {
      let out = "", err = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        const m = /^(\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
      child.on("exit", (c) => reject(new Error(`python3 exited ${c}: ${err}`)));
    });
  }
  return {
    kind, port, url: `https://127.0.0.1:${port}/${kind === "openssl" ? "image.http" : "image.bin"}`,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    }),
  };
}

async function listening(port: number, child: ChildProcess): Promise<void> {
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const deadline = performance.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`openssl s_server exited: ${err}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`openssl s_server not listening: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many certificates the server on `port` sends in its handshake (asked with `openssl s_client -showcerts`). */
export function sentCertificates(port: number): number {
  const r = spawnSync("openssl", ["s_client", "-showcerts", "-connect", `127.0.0.1:${port}`, "-servername", "127.0.0.1"], { input: "", encoding: "utf8", timeout: 20_000 });
  return (r.stdout.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
}
