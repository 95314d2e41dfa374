/*
 * The build-server side of a delta release through the CLI: xsota delta create, then
 * xsota manifest --delta/--delta-from (the delta entry signed with the rest), then
 * xsota publish --delta (the patch content-addressed under deltas/, before latest.json).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xsotaInProcess } from "./in-process-cli";
import { buildImage } from "../../host-sim/chip/image-builder";
import { nextBuild } from "../../host-sim/lab/next-build";
import { loadPublicKey, trustedKeyOf } from "../../backend/release/keys";
import { verifyManifest } from "../../modules/manifest";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { toHex } from "../../modules/bytes";

const xsota = xsotaInProcess;

let dir: string;
const p = (f: string) => join(dir, f);
const base = buildImage({ project: "sensor", version: "1.0.0", secureVersion: 1, size: 96 * 1024 });
const target = nextBuild(base, { version: "1.1.0" });
const hex = (b: Uint8Array) => toHex(sha256(b));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "xsota-delta-rel-"));
  writeFileSync(p("fw-1.0.0.bin"), base);
  writeFileSync(p("fw-1.1.0.bin"), target);
  expect((await xsota("keygen", "-o", p("key.pem"), "--pub", p("pub.pem"))).code).toBe(0);
  const c = await xsota("delta", "create", "--from", p("fw-1.0.0.bin"), "--to", p("fw-1.1.0.bin"), "--out", p("1.0.0.patch"));
  expect(c.code, c.err).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a delta release from the command line", () => {
  it("manifest --delta --delta-from signs the base's version, size and SHA-256 and the patch's", async () => {
    const m = await xsota("manifest", "--image", p("fw-1.1.0.bin"), "--url", "https://updates.example.com/", "--key", p("key.pem"),
      "--delta", p("1.0.0.patch"), "--delta-from", p("fw-1.0.0.bin"), "-o", p("release.json"), "--json");
    expect(m.code, m.err).toBe(0);
    const patch = new Uint8Array(readFileSync(p("1.0.0.patch")));
    const { manifest } = verifyManifest(new Uint8Array(readFileSync(p("release.json"))), [trustedKeyOf(loadPublicKey(p("pub.pem")))], nodeCrypto);
    expect(manifest.deltas).toEqual([{
      from: { version: "1.0.0", size: base.length, sha256: hex(base) },
      url: `https://updates.example.com/deltas/${hex(patch)}.bin`, size: patch.length, sha256: hex(patch), compression: "heatshrink",
    }]);
    expect(patch.length).toBeLessThan(target.length / 10);
    const text = await xsota("manifest", "--image", p("fw-1.1.0.bin"), "--url", "https://u/", "--key", p("key.pem"), "--delta", p("1.0.0.patch"), "--delta-from", p("fw-1.0.0.bin"), "-o", p("r2.json"));
    expect(text.out).toMatch(/delta from 1\.0\.0 .*bytes, \d+\.\d % of the image, heatshrink/);
  });

  it("refuses a delta without its base, a --delta-url over http:, and a patch that is not a detools patch", async () => {
    const noBase = await xsota("manifest", "--image", p("fw-1.1.0.bin"), "--url", "https://u/", "--key", p("key.pem"), "--delta", p("1.0.0.patch"), "-o", p("x.json"));
    expect(noBase.code).toBe(2);
    const http = await xsota("manifest", "--image", p("fw-1.1.0.bin"), "--url", "https://u/", "--key", p("key.pem"), "--delta", p("1.0.0.patch"), "--delta-from", p("fw-1.0.0.bin"), "--delta-url", "http://u/p.bin", "-o", p("x.json"));
    expect(http.code).toBe(1);
    expect(http.err).toMatch(/HTTP_INSECURE_URL/);
    const notPatch = await xsota("manifest", "--image", p("fw-1.1.0.bin"), "--url", "https://u/", "--key", p("key.pem"), "--delta", p("fw-1.0.0.bin"), "--delta-from", p("fw-1.0.0.bin"), "-o", p("x.json"));
    expect(notPatch.code).toBe(1);
    expect(notPatch.err).toMatch(/DELTA_/);
    expect(existsSync(p("x.json"))).toBe(false);
  });

  it("publish --delta writes the patch under deltas/<sha256>.bin before the manifests; a patch the manifest does not list is refused", async () => {
    const patch = new Uint8Array(readFileSync(p("1.0.0.patch")));
    const r = await xsota("publish", "--dir", p("public"), "--pub", p("pub.pem"), p("release.json"), p("fw-1.1.0.bin"), "--delta", p("1.0.0.patch"), "--json");
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.deltas).toEqual([`deltas/${hex(patch)}.bin`]);
    expect(out.written.indexOf(out.deltas[0])).toBeLessThan(out.written.indexOf(out.latest));
    expect(out.written.indexOf(out.deltas[0])).toBeGreaterThan(out.written.indexOf(out.image));
    expect(Buffer.from(readFileSync(p(`public/deltas/${hex(patch)}.bin`))).equals(Buffer.from(patch))).toBe(true);
    expect(out.warnings).toEqual([]);
    const stranger = await xsota("publish", "--dir", p("public2"), p("release.json"), p("fw-1.1.0.bin"), "--delta", p("fw-1.0.0.bin"));
    expect(stranger.code).toBe(1);
    expect(stranger.err).toMatch(/DOWNLOAD_HASH/);
    const without = await xsota("publish", "--dir", p("public3"), p("release.json"), p("fw-1.1.0.bin"), "--json");
    expect(without.code).toBe(0);
    expect(JSON.parse(without.out).warnings.join(" ")).toMatch(/no patch given for the delta from 1\.0\.0/);
  });
});
