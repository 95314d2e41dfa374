/*
 * Release layout for a static host (a directory a CDN serves, or an S3-compatible bucket):
 *
 *   images/<sha256>.bin                          the image as published (immutable, content-addressed)
 *   deltas/<sha256>.bin                          each patch the manifest lists (immutable, content-addressed)
 *   products/<product>/<channel>/<version>.json  the signed envelope of that release (immutable)
 *   products/<product>/<channel>/latest.json     the signed envelope devices poll (no-cache)
 *   products/<product>/<channel>/index.json      list of published versions (for people and tools)
 *
 * Files are written image (and patches) first and latest.json last, so a device never sees a manifest whose
 * image is missing. Directory writes are atomic (temp file + rename).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { S3Client, PutObjectCommand, HeadObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { OtaError } from "../../modules/errors";
import { toHex, utf8Encode, utf8Decode } from "../../modules/bytes";
import { manifestFromJson, parseEnvelope, verifyManifest, type Manifest } from "../../modules/manifest";
import { compareSemver } from "../../modules/semver";
import type { TrustedKey } from "../../modules/keys";
import { nodeCrypto, sha256 } from "../crypto";

export interface PublishedFile {
  path: string;
  bytes: Uint8Array;
  contentType: string;
  cacheControl: string;
  /** Content-addressed or per-version: never changes once written. */
  immutable: boolean;
}

export interface ReleaseLayout {
  manifest: Manifest;
  channel: string;
  imagePath: string;
  manifestPath: string;
  latestPath: string;
  indexPath: string;
  /** In write order. index.json is added by the publisher (it depends on what is there). */
  files: PublishedFile[];
  warnings: string[];
}

const IMMUTABLE = "public, max-age=31536000, immutable";
const NO_CACHE = "no-cache";

export interface PublishOptions {
  keys?: readonly TrustedKey[];
  channel?: string;
  /** Patches of the manifest's deltas (each must be one of them, by SHA-256 and size). */
  patches?: readonly Uint8Array[];
  force?: boolean;
  now?: Date;
}

/**
 * Check that `envelope` describes `image` (and each of `patches` one of its deltas) and compute
 * the files to publish. With `keys`, the envelope must also verify.
 * Throws MANIFEST_*, SIG_*, DOWNLOAD_SIZE, DOWNLOAD_HASH (a patch no delta lists, too).
 */
export function layoutRelease(envelope: Uint8Array, image: Uint8Array, options: PublishOptions = {}): ReleaseLayout {
  let manifest: Manifest;
  if (options.keys) manifest = verifyManifest(envelope, options.keys, nodeCrypto).manifest;
  else {
    const env = parseEnvelope(envelope);
    let json: unknown;
    try {
      json = JSON.parse(utf8Decode(env.payload));
    } catch (e) {
      throw new OtaError("MANIFEST_SYNTAX", `payload: ${(e as Error).message}`);
    }
    manifest = manifestFromJson(json);
  }
  if (manifest.size !== image.length) throw new OtaError("DOWNLOAD_SIZE", `manifest says ${manifest.size} bytes, the image has ${image.length}`);
  const hash = toHex(sha256(image));
  if (manifest.sha256 !== hash) throw new OtaError("DOWNLOAD_HASH", `manifest says ${manifest.sha256}, the image is ${hash}`);
  const channel = options.channel ?? manifest.channel ?? "stable";
  if (manifest.channel && manifest.channel !== channel) throw new OtaError("MANIFEST_FIELD", `channel: the manifest is signed for '${manifest.channel}', not '${channel}'`);
  const base = `products/${manifest.product}/${channel}`;
  const imagePath = `images/${hash}.bin`;
  const warnings: string[] = [];
  if (!manifest.url.endsWith(imagePath)) warnings.push(`manifest url ${manifest.url} does not point at ${imagePath}: devices will fetch the url as signed`);
  const patchFiles: PublishedFile[] = [];
  const given = new Set<string>();
  for (const patch of options.patches ?? []) {
    const h = toHex(sha256(patch));
    const d = (manifest.deltas ?? []).find((x) => x.sha256 === h);
    if (!d) throw new OtaError("DOWNLOAD_HASH", `patch ${h.slice(0, 16)}... is none of the manifest's deltas`);
    if (d.size !== patch.length) throw new OtaError("DOWNLOAD_SIZE", `manifest says the patch has ${d.size} bytes, it has ${patch.length}`);
    if (given.has(h)) continue;
    given.add(h);
    const path = `deltas/${h}.bin`;
    if (!d.url.endsWith(path)) warnings.push(`delta url ${d.url} does not point at ${path}: devices will fetch the url as signed`);
    patchFiles.push({ path, bytes: patch, contentType: "application/octet-stream", cacheControl: IMMUTABLE, immutable: true });
  }
  for (const d of manifest.deltas ?? []) {
    if (!given.has(d.sha256)) warnings.push(`no patch given for the delta from ${d.from.version}: devices running it will fetch ${d.url} as signed`);
  }
  return {
    manifest,
    channel,
    imagePath,
    manifestPath: `${base}/${manifest.version}.json`,
    latestPath: `${base}/latest.json`,
    indexPath: `${base}/index.json`,
    files: [
      { path: imagePath, bytes: image, contentType: "application/octet-stream", cacheControl: IMMUTABLE, immutable: true },
      ...patchFiles,
      { path: `${base}/${manifest.version}.json`, bytes: envelope, contentType: "application/json", cacheControl: IMMUTABLE, immutable: true },
      { path: `${base}/latest.json`, bytes: envelope, contentType: "application/json", cacheControl: NO_CACHE, immutable: false },
    ],
    warnings,
  };
}

export interface IndexEntry {
  version: string;
  secureVersion: number;
  sha256: string;
  size: number;
  manifest: string;
  publishedAt: string;
}

function latestVersionOf(latest: Uint8Array | undefined): string | undefined {
  if (!latest) return undefined;
  try {
    return manifestFromJson(JSON.parse(utf8Decode(parseEnvelope(latest).payload))).version;
  } catch {
    return undefined;
  }
}

function nextIndex(current: Uint8Array | undefined, layout: ReleaseLayout, now: Date): Uint8Array {
  let entries: IndexEntry[] = [];
  try {
    if (current) entries = (JSON.parse(utf8Decode(current)) as { releases: IndexEntry[] }).releases ?? [];
  } catch {
    entries = [];
  }
  const m = layout.manifest;
  entries = entries.filter((e) => e.version !== m.version);
  entries.push({ version: m.version, secureVersion: m.secureVersion, sha256: m.sha256, size: m.size, manifest: layout.manifestPath, publishedAt: now.toISOString() });
  entries.sort((a, b) => compareSemver(a.version, b.version));
  return utf8Encode(JSON.stringify({ product: m.product, channel: layout.channel, latest: m.version, releases: entries }, null, 2) + "\n");
}

function refuseOlder(current: string | undefined, layout: ReleaseLayout, force: boolean): void {
  if (!force && current && compareSemver(layout.manifest.version, current) < 0)
    throw new OtaError("POLICY_NOT_NEWER", `${layout.latestPath} is ${current}; publishing ${layout.manifest.version} as latest needs --force`);
}

export interface PublishResult {
  layout: ReleaseLayout;
  written: string[];
  skipped: string[];
}

/** Publish into a directory tree. Throws as layoutRelease, and POLICY_NOT_NEWER unless `force`. */
export function publishToDir(dir: string, envelope: Uint8Array, image: Uint8Array, options: PublishOptions = {}): PublishResult {
  const layout = layoutRelease(envelope, image, options);
  const read = (p: string) => (existsSync(join(dir, p)) ? new Uint8Array(readFileSync(join(dir, p))) : undefined);
  refuseOlder(latestVersionOf(read(layout.latestPath)), layout, !!options.force);
  const files = [...layout.files];
  files.splice(files.length - 1, 0, { path: layout.indexPath, bytes: nextIndex(read(layout.indexPath), layout, options.now ?? new Date()), contentType: "application/json", cacheControl: NO_CACHE, immutable: false });
  const written: string[] = [];
  const skipped: string[] = [];
  for (const f of files) {
    const target = join(dir, f.path);
    const existing = f.immutable ? read(f.path) : undefined;
    if (existing && Buffer.from(existing).equals(Buffer.from(f.bytes))) {
      skipped.push(f.path);
      continue;
    }
    if (existing && f.path === layout.manifestPath && !options.force) throw new OtaError("POLICY_NOT_NEWER", `${f.path} exists with other content: a published version is immutable (bump the version)`);
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}`;
    writeFileSync(tmp, f.bytes);
    renameSync(tmp, target);
    written.push(f.path);
  }
  return { layout, written, skipped };
}

export interface S3Target {
  bucket: string;
  /** Key prefix ("releases/"), optional. */
  prefix?: string;
  client: S3Client;
}

/** An S3 client for any S3-compatible endpoint (credentials from the usual AWS sources unless given). */
export function s3Client(options: { endpoint?: string; region?: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle?: boolean }): S3Client {
  return new S3Client({
    region: options.region ?? process.env.AWS_REGION ?? "us-east-1",
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? !!options.endpoint,
    ...(options.accessKeyId && options.secretAccessKey ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
  });
}

async function s3Get(t: S3Target, key: string): Promise<Uint8Array | undefined> {
  try {
    const out = await t.client.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
    return out.Body ? await out.Body.transformToByteArray() : undefined;
  } catch (e) {
    const name = (e as { name?: string }).name;
    if (name === "NoSuchKey" || name === "NotFound") return undefined;
    throw new OtaError("HTTP_CONNECT", `S3 get ${key}: ${(e as Error).message}`);
  }
}

async function s3Exists(t: S3Target, key: string): Promise<boolean> {
  try {
    await t.client.send(new HeadObjectCommand({ Bucket: t.bucket, Key: key }));
    return true;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (e as { name?: string }).name === "NotFound") return false;
    throw new OtaError("HTTP_CONNECT", `S3 head ${key}: ${(e as Error).message}`);
  }
}

/** Publish into an S3-compatible bucket through the AWS SDK, in the same order and layout. */
export async function publishToS3(target: S3Target, envelope: Uint8Array, image: Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
  const layout = layoutRelease(envelope, image, options);
  const key = (p: string) => (target.prefix ? target.prefix.replace(/\/?$/, "/") : "") + p;
  refuseOlder(latestVersionOf(await s3Get(target, key(layout.latestPath))), layout, !!options.force);
  const published = await s3Get(target, key(layout.manifestPath));
  if (published && !options.force && !Buffer.from(published).equals(Buffer.from(envelope)))
    throw new OtaError("POLICY_NOT_NEWER", `${layout.manifestPath} exists with other content: a published version is immutable (bump the version)`);
  const files = [...layout.files];
  files.splice(files.length - 1, 0, { path: layout.indexPath, bytes: nextIndex(await s3Get(target, key(layout.indexPath)), layout, options.now ?? new Date()), contentType: "application/json", cacheControl: NO_CACHE, immutable: false });
  const written: string[] = [];
  const skipped: string[] = [];
  for (const f of files) {
    if ((f.path === layout.imagePath || f.path.startsWith("deltas/")) && (await s3Exists(target, key(f.path)))) {
      skipped.push(f.path);
      continue;
    }
    try {
      await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key(f.path), Body: f.bytes, ContentType: f.contentType, CacheControl: f.cacheControl }));
    } catch (e) {
      throw new OtaError("HTTP_CONNECT", `S3 put ${key(f.path)}: ${(e as Error).message}`);
    }
    written.push(f.path);
  }
  return { layout, written, skipped };
}
