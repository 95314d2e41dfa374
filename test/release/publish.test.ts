import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand } from "@aws-sdk/client-s3";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";
import { publishToDir, publishToS3, s3Client } from "../../backend/release/publish";
import { createManifest } from "../../backend/release/manifest-tool";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { signV1 } from "../../backend/release/espsecure";
import { verifyManifest } from "../../modules/manifest";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { toHex } from "../../modules/bytes";
import { OtaError } from "../../modules/errors";
import { makeCa, makeServerCert } from "../../backend/release/pki";
import { startUpdateHost } from "../../backend/update-host";
import { get } from "./https-client";
import { command as publishCommand } from "../../cli/publish";

const key = generateKey("ecdsa-p256");
const trusted = [trustedKeyOf(key)];
function release(version: string, fill: number) {
  const image = signV1(new Uint8Array(20_000).fill(fill), key);
  const url = `https://127.0.0.1/images/${toHex(sha256(image))}.bin`;
  return { image, envelope: createManifest({ product: "sensor", version, secureVersion: 1, url, image, channel: "stable", keys: [key] }) };
}
const code = async (f: () => unknown) => {
  try {
    await f();
  } catch (e) {
    return e instanceof OtaError ? e.code : String(e);
  }
  return "ok";
};

describe("publish to a directory", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "xsota-pub-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lays out content-addressed images, per-version and latest manifests, and an index; a device can fetch it over HTTPS", async () => {
    const r1 = release("1.0.0", 1);
    const res = publishToDir(dir, r1.envelope, r1.image, { keys: trusted });
    expect(res.written).toEqual([res.layout.imagePath, "products/sensor/stable/1.0.0.json", "products/sensor/stable/index.json", "products/sensor/stable/latest.json"]);
    expect(res.layout.imagePath).toBe(`images/${toHex(sha256(r1.image))}.bin`);
    expect(res.layout.warnings).toEqual([]);
    const r2 = release("1.1.0", 2);
    publishToDir(dir, r2.envelope, r2.image);
    const index = JSON.parse(readFileSync(join(dir, "products/sensor/stable/index.json"), "utf8"));
    expect(index.latest).toBe("1.1.0");
    expect(index.releases.map((e: { version: string }) => e.version)).toEqual(["1.0.0", "1.1.0"]);
    expect(existsSync(join(dir, res.layout.imagePath))).toBe(true);

    const ca = await makeCa();
    const cert = await makeServerCert(ca);
    const host = await startUpdateHost({ dir, cert: cert.certPem, key: cert.keyPem });
    try {
      const latest = await get(`${host.url}/products/sensor/stable/latest.json`, ca.caCertPem);
      expect(latest.headers["cache-control"]).toBe("no-cache");
      const { manifest } = verifyManifest(latest.body, trusted, nodeCrypto);
      expect(manifest.version).toBe("1.1.0");
      const img = await get(`${host.url}/${new URL(manifest.url).pathname.slice(1)}`, ca.caCertPem);
      expect(toHex(sha256(img.body))).toBe(manifest.sha256);
      expect(img.headers["cache-control"]).toContain("immutable");
    } finally {
      await host.close();
    }
  });

  it("refuses an older latest (unless forced), a changed published version, and a manifest that does not match the image", async () => {
    const old = release("0.9.0", 3);
    expect(await code(() => publishToDir(dir, old.envelope, old.image))).toBe("POLICY_NOT_NEWER");
    expect(publishToDir(dir, old.envelope, old.image, { force: true }).written).toContain("products/sensor/stable/latest.json");
    const again = release("1.1.0", 9); // same version, other bytes
    expect(await code(() => publishToDir(dir, again.envelope, again.image, { force: false }))).toBe("POLICY_NOT_NEWER");
    const a = release("2.0.0", 4);
    const b = release("2.0.1", 5);
    expect(await code(() => publishToDir(dir, a.envelope, b.image))).toBe("DOWNLOAD_HASH");
    expect(await code(() => publishToDir(dir, a.envelope, b.image.subarray(1)))).toBe("DOWNLOAD_SIZE");
    expect(await code(() => publishToDir(dir, a.envelope, a.image, { keys: [trustedKeyOf(generateKey("ecdsa-p256"))] }))).toBe("SIG_UNKNOWN_KEY");
    expect(await code(() => publishToDir(dir, a.envelope, a.image, { channel: "beta" }))).toBe("MANIFEST_FIELD");
  });
});

describe("publish to S3 (s3rver, a local S3-compatible server, through @aws-sdk/client-s3)", () => {
  it("puts the same layout with content types and cache headers, and skips an image already there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-s3-"));
    const server = new S3rver({ port: 0, address: "127.0.0.1", directory: dir, silent: true });
    const { port } = await server.run();
    try {
      const client = s3Client({ endpoint: `http://127.0.0.1:${port}`, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
      await client.send(new CreateBucketCommand({ Bucket: "xsota-releases" }));
      const r = release("3.0.0", 6);
      const first = await publishToS3({ client, bucket: "xsota-releases", prefix: "fw" }, r.envelope, r.image);
      expect(first.written).toHaveLength(4);
      const latest = await client.send(new GetObjectCommand({ Bucket: "xsota-releases", Key: "fw/products/sensor/stable/latest.json" }));
      expect(latest.ContentType).toBe("application/json");
      expect(latest.CacheControl).toBe("no-cache");
      const body = await latest.Body!.transformToByteArray();
      expect(verifyManifest(body, trusted, nodeCrypto).manifest.version).toBe("3.0.0");
      const img = await client.send(new GetObjectCommand({ Bucket: "xsota-releases", Key: `fw/${first.layout.imagePath}` }));
      expect(toHex(sha256(await img.Body!.transformToByteArray()))).toBe(toHex(sha256(r.image)));
      const second = await publishToS3({ client, bucket: "xsota-releases", prefix: "fw" }, r.envelope, r.image);
      expect(second.skipped).toEqual([first.layout.imagePath]);
      const older = release("2.0.0", 7);
      expect(await code(() => publishToS3({ client, bucket: "xsota-releases", prefix: "fw" }, older.envelope, older.image))).toBe("POLICY_NOT_NEWER");
      const changed = release("3.0.0", 9);
      expect(await code(() => publishToS3({ client, bucket: "xsota-releases", prefix: "fw" }, changed.envelope, changed.image))).toBe("POLICY_NOT_NEWER");
      // The same through the command line (credentials from the usual AWS_* variables).
      const files = mkdtempSync(join(tmpdir(), "xsota-s3cli-"));
      const next = release("3.1.0", 8);
      writeFileSync(join(files, "release.json"), next.envelope);
      writeFileSync(join(files, "fw.bin"), next.image);
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" });
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      let status: number;
      try {
        status = await publishCommand.run(["--s3", "s3://xsota-releases/fw", "--endpoint", `http://127.0.0.1:${port}`, "--json", join(files, "release.json"), join(files, "fw.bin")]);
      } finally {
        process.stdout.write = write;
        delete process.env.AWS_ACCESS_KEY_ID;
        delete process.env.AWS_SECRET_ACCESS_KEY;
      }
      expect(status).toBe(0);
      const now = await client.send(new GetObjectCommand({ Bucket: "xsota-releases", Key: "fw/products/sensor/stable/latest.json" }));
      expect(verifyManifest(await now.Body!.transformToByteArray(), trusted, nodeCrypto).manifest.version).toBe("3.1.0");
      client.destroy();
      rmSync(files, { recursive: true, force: true });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
