/*
 * The TLS record size on Moddable's runtime, on the wire: src/http.ts asks for 4 KB records
 * (RFC 6066 max_fragment_length in the ClientHello), and securesocket then holds 4 KB records, not
 * 16 KB ones (about 12 KB less RAM during a download, bench "peak live"). A TCP relay between the
 * program's raw download and a Node HTTPS server (OpenSSL honours the extension) reads the
 * ClientHello's extensions and the length of every record the server sends.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer as createTcpServer, connect, type Server as TcpServer, type AddressInfo } from "node:net";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skip, program, BUILD_WAIT_MS } from "./built";
import { makeCa, makeServerCert } from "../../backend/release/pki";
import { derBase64 } from "../../host-sim/engines/moddable/driver";

const BODY = randomBytes(40 * 1024);

/** TLS extensions of a ClientHello record (type -> data), or undefined if `rec` is not one. */
function helloExtensions(rec: Buffer): Map<number, Buffer> | undefined {
  if (rec[0] !== 0x16 || rec[5] !== 0x01) return undefined;
  let at = 5 + 4 + 2 + 32; // record header, handshake header, client_version, random
  at += 1 + rec[at]!; // session id
  at += 2 + rec.readUInt16BE(at); // cipher suites
  at += 1 + rec[at]!; // compression methods
  const end = at + 2 + rec.readUInt16BE(at);
  at += 2;
  const out = new Map<number, Buffer>();
  while (at + 4 <= end) {
    const type = rec.readUInt16BE(at), len = rec.readUInt16BE(at + 2);
    out.set(type, rec.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

/** Splits a TLS byte stream into record lengths (payload bytes), as they complete. */
function recordReader(onRecord: (type: number, length: number, record: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const length = buf.readUInt16BE(3);
      if (buf.length < 5 + length) break;
      onRecord(buf[0]!, length, buf.subarray(0, 5 + length));
      buf = buf.subarray(5 + length);
    }
  };
}

describe.skipIf(skip !== undefined)("TLS records on Moddable's runtime (x-cli-lin)", () => {
  let https: HttpsServer, relay: TcpServer, work: string, ca: string;
  const fromClient: Buffer[] = [];
  const serverRecords: number[] = [];

  beforeAll(async () => {
    const authority = await makeCa();
    const cert = await makeServerCert(authority, { hosts: ["127.0.0.1"] });
    ca = authority.caCertPem;
    https = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
      res.writeHead(200, { "content-length": BODY.length });
      res.end(BODY);
    });
    await new Promise<void>((r) => https.listen(0, "127.0.0.1", r));
    const target = (https.address() as AddressInfo).port;
    relay = createTcpServer((client) => {
      const server = connect(target, "127.0.0.1");
      const fromServer = recordReader((type, length) => {
        if (type === 0x17) serverRecords.push(length); // application data
      });
      const fromClientRecords = recordReader((_type, _length, record) => fromClient.push(Buffer.from(record)));
      client.on("data", (d: Buffer) => { fromClientRecords(d); server.write(d); });
      server.on("data", (d: Buffer) => { fromServer(d); client.write(d); });
      client.on("close", () => server.destroy());
      server.on("close", () => client.destroy());
      client.on("error", () => server.destroy());
      server.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    work = mkdtempSync(join(tmpdir(), "xsota-moddable-tls-"));
  }, BUILD_WAIT_MS);

  afterAll(async () => {
    await new Promise((r) => relay?.close(r));
    await new Promise((r) => https?.close(r));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("asks for 4 KB records in its ClientHello and gets them: no application record over 4 KB + the cipher's overhead", async () => {
    const bootFile = join(work, "boot.json");
    writeFileSync(bootFile, JSON.stringify({ ca: derBase64(ca) }));
    const url = `https://127.0.0.1:${(relay.address() as AddressInfo).port}/image.bin`;
    const out = await new Promise<string>((resolve, reject) => {
      void program().then((p) => {
        const child = spawn(p, ["--boot", bootFile, "--nvs", work, "--raw", url], { stdio: ["ignore", "pipe", "pipe"] });
        let text = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (text += d));
        child.on("error", reject);
        child.on("close", () => resolve(text));
      }, reject);
    });
    const line = out.split("\n").find((l) => l.startsWith("@raw "));
    expect(line, out).toBeDefined();
    const raw = JSON.parse(line!.slice(5)) as { bytes: number; sha256: string; error?: string };
    expect(raw.error).toBeUndefined();
    expect(raw.sha256).toBe(createHash("sha256").update(BODY).digest("hex"));

    const ext = helloExtensions(fromClient[0]!);
    expect(ext, "the first record from the program is a ClientHello").toBeDefined();
    // max_fragment_length (type 1): one byte, 4 = 2^12
    expect([...(ext!.get(1) ?? [])]).toEqual([4]);
    // the server honoured it: a 40 KB body in records of at most 4,096 bytes of plaintext
    // (+ AEAD nonce and tag, or CBC IV, MAC and padding: under 256 bytes)
    expect(serverRecords.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...serverRecords)).toBeLessThanOrEqual(4096 + 256);
  }, BUILD_WAIT_MS + 60_000);
});
