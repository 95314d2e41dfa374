import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:net";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { VirtualClock } from "../../backend/clock";
import { startUpdateHost, type UpdateHost } from "../../backend/update-host";
import { makeCa, makeIntermediateCa, makeServerCert, type CaBundle } from "../../backend/release/pki";
import type { HttpRequestOptions } from "../../modules/ports";

interface Result { status: number; headers: Record<string, string>; body: Uint8Array; error?: string; completed: boolean }

function get(http: NodeHttp, options: HttpRequestOptions): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { status: 0, headers: {}, body: new Uint8Array(0), completed: false };
    const parts: number[] = [];
    http.request(options, {
      onStatus: (s) => { r.status = s; },
      onHeader: (n, v) => { r.headers[n] = v; },
      onHeadersComplete: () => {},
      onData: (_n, read) => { const b = new Uint8Array(100); let k; while ((k = read(b)) > 0) parts.push(...b.subarray(0, k)); },
      onComplete: () => { r.completed = true; r.body = Uint8Array.from(parts); resolve(r); },
      onError: (code) => { r.error = code; resolve(r); },
    });
  });
}

let ca: CaBundle;
let other: CaBundle;
let host: UpdateHost;
const body = Uint8Array.from({ length: 10_000 }, (_, i) => i * 7);

beforeAll(async () => {
  ca = await makeCa();
  other = await makeCa(undefined, "other");
  const cert = await makeServerCert(ca, { hosts: ["127.0.0.1"] });
  host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, routes: { "/x.bin": body } });
});
afterAll(async () => { await host.close(); });

describe("NodeHttp (the simulator's HttpPort)", () => {
  it("refuses http: before any socket opens", async () => {
    let connections = 0;
    const plain: Server = createServer((s) => { connections++; s.destroy(); });
    await new Promise<void>((res) => plain.listen(0, "127.0.0.1", res));
    const port = (plain.address() as { port: number }).port;
    const http = new NodeHttp({ ca: ca.caCertPem });
    const r = await get(http, { url: `http://127.0.0.1:${port}/x.bin` });
    await new Promise((res) => setTimeout(res, 30));
    plain.close();
    expect(r.error).toBe("HTTP_INSECURE_URL");
    expect(connections).toBe(0);
    expect(http.stats.connections).toBe(0);
  });

  it("trusts only the pinned CA", async () => {
    const r = await get(new NodeHttp({ ca: other.caCertPem }), { url: `${host.url}/x.bin` });
    expect(r.error).toBe("HTTP_TLS");
    expect(r.completed).toBe(false);
  });

  it("refuses a chain that breaks the pinned CA's path length (an intermediate under pathLen 0) as HTTP_TLS", async () => {
    // OpenSSL's verdict is PATH_LENGTH_EXCEEDED, which names neither CERT nor SSL; it was HTTP_CLOSED
    const leaf = await makeServerCert(await makeIntermediateCa(ca), { hosts: ["127.0.0.1"] });
    const deep = await startUpdateHost({ cert: leaf.certPem, key: leaf.keyPem, routes: { "/x.bin": body } });
    try {
      const r = await get(new NodeHttp({ ca: ca.caCertPem }), { url: `${deep.url}/x.bin` });
      expect(r.error).toBe("HTTP_TLS");
      expect(r.completed).toBe(false);
    } finally {
      await deep.close();
    }
  });

  it("needs a CA: there is no default trust", () => {
    expect(() => new NodeHttp({ ca: [] })).toThrow(TypeError);
  });

  it("streams a Range request, holding the virtual clock while in flight", async () => {
    const clock = new VirtualClock();
    const http = new NodeHttp({ ca: ca.caCertPem, clock });
    const p = get(http, { url: `${host.url}/x.bin`, headers: [["range", "bytes=4096-"]] });
    expect(clock.quiet(Number.POSITIVE_INFINITY)).toBe(false);
    const r = await p;
    expect(r.status).toBe(206);
    expect(r.headers["content-range"]).toBe(`bytes 4096-9999/10000`);
    expect(r.body).toEqual(body.subarray(4096));
    expect(clock.quiet(Number.POSITIVE_INFINITY)).toBe(true);
  });

  it("connection refused is HTTP_CONNECT", async () => {
    const plain: Server = createServer();
    await new Promise<void>((res) => plain.listen(0, "127.0.0.1", res));
    const port = (plain.address() as { port: number }).port;
    await new Promise<void>((res) => plain.close(() => res()));
    const r = await get(new NodeHttp({ ca: ca.caCertPem }), { url: `https://127.0.0.1:${port}/x.bin` });
    expect(r.error).toBe("HTTP_CONNECT");
  });
});
