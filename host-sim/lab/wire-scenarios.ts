/*
 * End-to-end scenarios against the byte-controlled host (wire-host.ts): how other hosts frame
 * the same honest bytes. Run by test/agent (Node engine) and test/xs (both engines, equal
 * outcomes) with the rest of host-sim/lab/scenarios.ts. Each ends in a commit or a named code.
 */
import { gzipSync } from "node:zlib";
import type { Scenario } from "./scenario";
import { BEFORE_RESET_MS, head, honest, chunked, type WireScript, type WireStep } from "./wire-host";

const V11 = { version: "1.1.0", secureVersion: 1 };
const EXTRA = new TextEncoder().encode("\r\n<!-- 64 bytes a proxy appended after the body ------------ -->");
const te: [string, string][] = [["Transfer-Encoding", "chunked"], ["Connection", "close"]];

/** The honest response, with `shape` choosing the writes. */
const framed = (shape: (h: { head: string; body: Uint8Array }) => WireStep[]): WireScript => (req, r) => shape(honest(req, r));

export const wireScenarios: Scenario[] = [
  {
    name: "wire-extra-same-write", summary: "extra bytes leave in the same write as the last body bytes (a Python http.server behind TLS)", releases: [{ image: V11 }],
    wire: { image: framed((h) => [{ write: h.head }, { write: h.body.subarray(0, 30_000) }, { write: Buffer.concat([h.body.subarray(30_000), EXTRA]) }, { end: "fin" }]) },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-extra-then-reset", summary: "extra bytes in a later write, then a TCP reset", releases: [{ image: V11 }],
    wire: { image: framed((h) => [{ write: h.head }, { write: h.body }, { write: EXTRA }, { pause: BEFORE_RESET_MS }, { end: "reset" }]) },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-split-head", summary: "status line and headers one byte per write, then a half-close", releases: [{ image: V11 }],
    wire: { image: framed((h) => [{ bytewise: h.head }, { write: h.body }, { end: "half-close" }]) },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-no-length", summary: "no Content-Length: the body ends where the host closes", releases: [{ image: V11 }],
    wire: { image: (_req, r) => [{ write: head(200, [["Connection", "close"]]) }, { write: r.body }, { end: "fin" }] },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-chunked-image", summary: "chunked image whose total is the manifest's size", releases: [{ image: V11 }],
    wire: { image: (_req, r) => [{ write: head(200, te) }, { write: chunked(r.body, 5000) }, { end: "fin" }] },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-chunked-longer", summary: "chunked image longer than the manifest's size: refused, nothing past the size written", releases: [{ image: V11 }],
    wire: { image: (_req, r) => [{ write: head(200, te) }, { write: chunked(Buffer.concat([r.body, EXTRA]), 5000) }, { end: "fin" }] },
    expect: { version: "1.0.0", final: "failed", code: "HTTP_TOO_LONG", app0Untouched: true },
  },
  {
    name: "wire-chunked-manifest", summary: "the manifest chunked in 100-byte chunks", releases: [{ image: V11 }],
    wire: { manifest: (_req, r) => [{ write: head(200, te) }, { write: chunked(r.body, 100) }, { end: "fin" }] },
    expect: { version: "1.1.0", final: "committed" },
  },
  {
    name: "wire-gzip-manifest", summary: "the manifest sent with Content-Encoding: gzip", releases: [{ image: V11 }],
    wire: { manifest: (_req, r) => { const gz = gzipSync(r.body); return [{ write: head(200, [["Content-Length", gz.length], ["Content-Encoding", "gzip"]]) }, { write: gz }, { end: "fin" }]; } },
    expect: { version: "1.0.0", final: "failed", code: "HTTP_ENCODING", app0Untouched: true },
  },
  {
    name: "wire-gzip-image", summary: "the image sent with Content-Encoding: gzip", releases: [{ image: V11 }],
    wire: { image: (_req, r) => { const gz = gzipSync(r.body); return [{ write: head(200, [["Content-Length", gz.length], ["Content-Encoding", "gzip"]]) }, { write: gz }, { end: "fin" }]; } },
    expect: { version: "1.0.0", final: "failed", code: "HTTP_ENCODING", app0Untouched: true },
  },
  {
    name: "wire-long-header", summary: "a 9 KB header line, past the device's 8 KB header buffer", releases: [{ image: V11 }],
    wire: { image: framed((h) => [{ write: h.head.replace("\r\n", `\r\nX-Amz-Meta-Notes: ${"n".repeat(9000)}\r\n`) }, { write: h.body }, { end: "fin" }]) },
    expect: { version: "1.0.0", final: "failed", code: "HTTP_PROTOCOL", app0Untouched: true },
  },
  {
    name: "wire-duplicate-length", summary: "Content-Length sent twice", releases: [{ image: V11 }],
    wire: { image: (_req, r) => [{ write: head(200, [["Content-Length", r.body.length], ["Content-Length", r.body.length]]) }, { write: r.body }, { end: "fin" }] },
    expect: { version: "1.0.0", final: "failed", code: "HTTP_PROTOCOL", app0Untouched: true },
  },
  {
    name: "wire-second-content-range", summary: "cut, then a 206 with a second Content-Range: restart from 0", releases: [{ image: V11 }],
    wire: {
      image: (req, r) => {
        const h = honest(req, r);
        if (req.n === 0) return [{ write: h.head }, { write: h.body.subarray(0, 20_000) }, { pause: BEFORE_RESET_MS }, { end: "reset" }];
        if (req.n === 1) return [{ write: h.head.replace("Content-Range:", "Content-Range: bytes 0-99/65536\r\nContent-Range:") }, { write: h.body }, { end: "fin" }];
        return [{ write: h.head }, { write: h.body }, { end: "fin" }];
      },
    },
    expect: { version: "1.1.0", final: "committed" },
  },
];
