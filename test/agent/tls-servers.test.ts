/*
 * The agent's Node HTTP port (host-sim/engines/ports/http.ts, pinned CA only) against servers we did not
 * write: OpenSSL's s_server and Python's ssl, each sending the leaf alone and leaf + CA. Accepted
 * when the leaf is the pinned CA's and names the host; refused (HTTP_TLS) for a leaf another CA
 * signed and for a leaf of the pinned CA that names another host. Moddable's runtime, the same
 * servers: test/moddable/tls-servers.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { nodeCrypto } from "../../backend/crypto";
import { VirtualClock } from "../../backend/clock";
import { rawDownload, type RawResult } from "../../moddable-host/bench";
import { hasOpenssl, hasPython, makePki, startTlsServer, type Chain, type Pki, sentCertificates } from "../tls-servers";

const kinds = ([["openssl", hasOpenssl], ["python", hasPython]] as const).filter(([, has]) => has);

describe.skipIf(kinds.length < 2)("TLS on Node against OpenSSL's s_server and Python's ssl (leaf alone, leaf + CA)", () => {
  let pki: Pki;
  beforeAll(async () => void (pki = await makePki()), 60_000);
  afterAll(() => pki?.close());

  const get = (url: string) => new Promise<RawResult>((resolve) => rawDownload(url, new NodeHttp({ ca: pki.ca }), nodeCrypto, new VirtualClock(), resolve));

  for (const kind of ["openssl", "python"] as const) {
    for (const chain of ["leaf", "leaf+ca"] as Chain[]) {
      it(`${kind}, ${chain}: the pinned CA's leaf is accepted; another CA's leaf and a leaf for another name are refused`, async () => {
        for (const [name, ok] of [["good", true], ["rogue", false], ["otherName", false]] as const) {
          const server = await startTlsServer(kind, pki, name, chain);
          try {
            if (name === "good") expect(sentCertificates(server.port), "certificates the server sends").toBe(chain === "leaf" ? 1 : 2);
            const r = await get(server.url);
            if (ok) {
              expect(r.error, `${name}`).toBeUndefined();
              expect(r.sha256).toBe(createHash("sha256").update(pki.body).digest("hex"));
            } else expect(r.error, `${name}`).toMatch(/^HTTP_TLS/);
          } finally {
            await server.close();
          }
        }
      }, 60_000);
    }
  }
});
