/*
 * The bench's raw download inside the Linux program (main.ts --raw URL; bench/moddable-run.ts reads
 * its "@raw" line): the floor the agent's update is compared with. One GET of the image through the
 * same binding the agent uses (src/http.ts: Moddable's http over securesocket, the pinned CA), each
 * fragment read into one caller-owned 4 KB buffer (modules/download.ts's BLOCK) and hashed by
 * crypt's Digest (src/crypto.ts). No flash, no parsing, no journal.
 */
import type { ClockPort, CryptoPort, HttpPort, MqttConnectOptions, MqttPort } from "../modules/ports";
import { toHex } from "../modules/bytes";

export interface RawResult {
  bytes: number;
  status: number;
  /** ms from the request to its headers, and to the last body byte hashed. */
  headersMs: number;
  ms: number;
  sha256: string;
  error?: string;
}

/** `ca`: the request's own trust anchors (PEM, one or more: HttpRequestOptions.ca), in place of the pinned CA. */
export function rawDownload(url: string, http: HttpPort, crypto: CryptoPort, clock: ClockPort, done: (r: RawResult) => void, ca?: string): void {
  const block = new Uint8Array(4096);
  const hash = crypto.sha256();
  const t0 = clock.now();
  let bytes = 0, status = 0, headersMs = 0;
  http.request(ca === undefined ? { url } : { url, ca }, { // http.js always sends "Connection: close"
    onStatus: (s) => void (status = s),
    onHeader: () => undefined,
    onHeadersComplete: () => void (headersMs = clock.now() - t0),
    onData(_available, read) {
      for (let n = read(block); n > 0; n = read(block)) {
        hash.write(n === block.length ? block : block.subarray(0, n));
        bytes += n;
      }
    },
    onComplete: () => done({ bytes, status, headersMs, ms: clock.now() - t0, sha256: toHex(hash.close()) }),
    onError: (code, detail) => done({ bytes, status, headersMs, ms: clock.now() - t0, sha256: "", error: `${code} ${detail}` }),
  });
}

/**
 * One MQTT connection over TLS through the agent's binding (src/mqtt.ts: securesocket and
 * src/tls-chain.ts's check), the tests' probe of its trust anchors (main.ts --mqtt HOST:PORT):
 * `ca` (PEM, one or more certificates) in place of the pinned CA when given. `done` once: "ready"
 * (CONNACK received; the connection is then closed) or the onClose reason.
 */
export function mqttProbe(mqtt: MqttPort, host: string, port: number, ca: string | undefined, done: (result: string) => void): void {
  let over = false;
  const finish = (result: string) => {
    if (over) return;
    over = true;
    done(result);
  };
  const options: MqttConnectOptions = { host, port, id: "xsota-probe", keepalive: 0, secure: true, ...(ca !== undefined ? { ca } : {}) };
  const client = mqtt.connect(options, {
    onReady: () => {
      client.close();
      finish("ready");
    },
    onMessage: () => undefined,
    onClose: (reason) => finish(reason),
  });
}
