/*
 * Several TLS trust anchors on Moddable's runtime (src/tls-chain.ts trustAnchors and
 * holdChainToItsSignatures, src/http.ts): a request's `ca` (PEM, one or more certificates: a root's
 * anchors during a CA rollover, modules/roles.ts anchoredHttp) replaces the pinned CA, and every
 * certificate of it in its validity period is an anchor. Before, securesocket got the first
 * certificate of the PEM alone, so a host whose CA was listed second failed with HTTP_TLS. Against
 * servers we did not write (OpenSSL's s_server, Python's ssl), each sending the leaf alone and
 * leaf + CA, through the program's raw download (the same EspHttp the agent uses). The same for
 * MQTT (src/mqtt.ts, MqttConnectOptions.ca) against mosquitto's TLS listener, through the program's
 * MQTT probe (--mqtt). The agent in roles mode, end to end with CA2 listed second:
 * test/moddable/roles.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skip, program, BUILD_WAIT_MS } from "./built";
import { derBase64 } from "../../host-sim/engines/moddable/driver";
import { makeCa, makeServerCert, pemCertificates } from "../../backend/release/pki";
import { findMosquitto, startBroker, type Broker } from "../../backend/mqtt/broker";
import { hasOpenssl, hasPython, makePki, startTlsServer, type Chain, type Pki } from "../tls-servers";

const DAY = 24 * 3600_000;

/** The program with BOOT.json `boot` in `work` and `args`; its stdout and stderr. */
async function runProgram(work: string, boot: unknown, args: string[]): Promise<string> {
  const p = await program();
  const file = join(work, `boot-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(boot));
  return new Promise<string>((resolve, reject) => {
    const child = spawn(p, ["--boot", file, "--nvs", work, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    const t = setTimeout(() => child.kill("SIGKILL"), 90_000); // a hang is a failure, not a stuck suite
    child.on("close", () => clearTimeout(t));
    child.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (text += d));
    child.on("error", reject);
    child.on("close", () => resolve(text));
  });
}

/** The JSON after `prefix` on the program's output line that starts with it. */
function lineOf<T>(out: string, prefix: string): T {
  const line = out.split("\n").find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`no ${prefix.trim()} line: ${out}`);
  return JSON.parse(line.slice(prefix.length)) as T;
}

describe.skipIf(skip !== undefined || !hasOpenssl || !hasPython)("several TLS anchors on Moddable's runtime (a request's ca: every certificate, in place of the pinned CA)", () => {
  let pki: Pki, work: string, expired: string, third: string;
  beforeAll(async () => {
    pki = await makePki();
    expired = (await makeCa(undefined, "an expired CA", { notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) })).caCertPem;
    third = (await makeCa(undefined, "a third CA")).caCertPem;
    work = mkdtempSync(join(tmpdir(), "xsota-moddable-tls-anchors-"));
  }, BUILD_WAIT_MS);
  afterAll(() => {
    pki?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The program's raw download of `url`, the device pinned to `pinned` and the request naming `ca`. */
  async function raw(url: string, pinned: string, ca: string): Promise<{ sha256: string; error?: string }> {
    return lineOf(await runProgram(work, { ca: derBase64(pinned), rawCa: ca }, ["--raw", url]), "@raw ");
  }

  for (const kind of ["openssl", "python"] as const) {
    for (const chain of ["leaf", "leaf+ca"] as Chain[]) {
      it(`${kind}, ${chain}: a host of the second anchor is accepted, also after an expired first one; a CA not listed is refused (HTTP_TLS), the pinned one too`, async () => {
        const good = await startTlsServer(kind, pki, "good", chain); // its certificate is from pki.ca
        const rogue = await startTlsServer(kind, pki, "rogue", chain); // from pki.otherCa
        try {
          const body = createHash("sha256").update(pki.body).digest("hex");
          const cases: [string, string, string, string, boolean][] = [
            // [what, url, pinned, the request's ca, accepted]
            ["second of [other, ca]", good.url, pki.otherCa, pki.otherCa + pki.ca, true],
            ["second of [expired, ca]", good.url, pki.otherCa, expired + pki.ca, true],
            ["not in [third, ca]", rogue.url, pki.otherCa, third + pki.ca, false],
            ["pinned ca, request [third]: replaced", good.url, pki.ca, third, false],
          ];
          for (const [what, url, pinned, ca, ok] of cases) {
            const r = await raw(url, pinned, ca);
            if (ok) {
              expect(r.error, what).toBeUndefined();
              expect(r.sha256, what).toBe(body);
            } else expect(r.error, what).toMatch(/^HTTP_TLS/);
          }
        } finally {
          await good.close();
          await rogue.close();
        }
      }, BUILD_WAIT_MS + 180_000);
    }
  }

  it("only expired anchors: HTTP_TLS before any connection, and the program does not panic", async () => {
    const server = await startTlsServer("openssl", pki, "good", "leaf+ca");
    try {
      const r = await raw(server.url, pki.ca, expired);
      expect(r.error).toMatch(/^HTTP_TLS .*no trust anchor/);
    } finally {
      await server.close();
    }
  }, BUILD_WAIT_MS + 60_000);
});

describe.skipIf(skip !== undefined || !findMosquitto())("several TLS anchors for MQTT on Moddable's runtime (a connection's ca), against mosquitto's TLS listener", () => {
  let broker: Broker, work: string, ca1: string, ca2: string, expired: string, third: string;
  beforeAll(async () => {
    await program();
    work = mkdtempSync(join(tmpdir(), "xsota-moddable-mqtt-anchors-"));
    const [a, b] = [await makeCa(undefined, "CA1"), await makeCa(undefined, "CA2")];
    [ca1, ca2] = [a.caCertPem, b.caCertPem];
    expired = (await makeCa(undefined, "an expired CA", { notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) })).caCertPem;
    third = (await makeCa(undefined, "a third CA")).caCertPem;
    const leaf = await makeServerCert(b, { hosts: ["127.0.0.1"] }); // the broker's certificate is from CA2; it sends the leaf alone
    writeFileSync(join(work, "leaf.pem"), pemCertificates(leaf.certPem)[0]!);
    writeFileSync(join(work, "leaf.key"), leaf.keyPem);
    broker = await startBroker({ kind: "mosquitto", mosquittoTls: { certFile: join(work, "leaf.pem"), keyFile: join(work, "leaf.key") } });
  }, BUILD_WAIT_MS + 60_000);
  afterAll(async () => {
    await broker?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("pinned to CA1: the connection's [ca1, ca2] and [expired, ca2] reach the CA2 broker; [third] replaces the pinned CA and is refused; only expired anchors: MQTT_CONNECT", async () => {
    const probe = async (ca: string | undefined) => lineOf<string>(await runProgram(work, { ca: derBase64(ca1), ...(ca !== undefined ? { rawCa: ca } : {}) }, ["--mqtt", `127.0.0.1:${broker.tlsPort!}`]), "@mqtt ");
    expect(await probe(undefined), "the pinned CA1 alone").toMatch(/^MQTT_CONNECT/);
    expect(await probe(ca1 + ca2), "CA2 second").toBe("ready");
    expect(await probe(expired + ca2), "an expired first anchor").toBe("ready");
    expect(await probe(third), "a CA not listed").toMatch(/^MQTT_CONNECT/);
    expect(await probe(expired), "only expired").toMatch(/^MQTT_CONNECT: no trust anchor/);
  }, BUILD_WAIT_MS + 120_000);
});
