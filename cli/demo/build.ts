/*
 * The demo's build server: a release signing key and a TLS CA written to the output dir, the
 * four firmware builds of the story (test images from SIM's image builder), each signed as
 * espsecure.py sign_data does (v1), and published into the static tree the update host serves.
 * A build with `deltaFrom` is a next build of that one (one changed module, backend/release/
 * next-build.ts) and is published with a heatshrink patch from it next to its full image.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex } from "../../modules/bytes";
import { buildImage } from "../../host-sim/chip/image-builder";
import { signImage } from "../../backend/release/espsecure";
import { generateKey, writeKeyFiles, type SigningKey } from "../../backend/release/keys";
import { signRoot, createRollout } from "../../backend/release/roles-tool";
import { makeCa, makeServerCert, type CaBundle, type ServerCert } from "../../backend/release/pki";
import { createManifest, deltaEntry } from "../../backend/release/manifest-tool";
import { nextBuild } from "../../host-sim/lab/next-build";
import { createPatch } from "../../backend/delta/create";
import type { ManifestDelta } from "../../modules/manifest";
import { publishToDir } from "../../backend/release/publish";
import { sha256 } from "../../backend/crypto";
import { DEFAULT_EPOCH } from "../../backend/clock";
import type { Behavior } from "../../host-sim/chip/device";

export const PRODUCT = "thermo";
export const CHANNEL = "stable";

export interface FirmwareSpec {
  version: string;
  behavior: Behavior;
  /** One line for the story. */
  note: string;
  /** Build this one as a next build of that version, and publish a patch from it. */
  deltaFrom?: string;
}

export interface Firmware extends FirmwareSpec {
  /** The signed file as published (image + espsecure v1 block). */
  bytes: Uint8Array;
  sha256: string;
  /** Set once published: where devices fetch it. */
  url?: string;
  file: string;
  /** The patch from `deltaFrom`'s signed file to this one, and (once published) its manifest entry. */
  patch?: { from: Firmware; bytes: Uint8Array; entry?: ManifestDelta };
}

export interface BuildServer {
  /** The release role's key (offline: signs images and release manifests). */
  key: SigningKey;
  /**
   * The other roles (modules/roles.ts): the root key (offline) signed the root devices ship; the
   * controller holds only the rollout and commands keys (online).
   */
  roles: { root: SigningKey; rollout: SigningKey; commands: SigningKey; rootEnvelope: Uint8Array };
  ca: CaBundle;
  server: ServerCert;
  firmware: Map<string, Firmware>;
  dirs: { out: string; keys: string; tls: string; firmware: string; www: string };
}

/** Key, CA, server certificate, and the signed builds. Throws what SIM's builder and SIGN's tools throw. */
export async function buildServer(out: string, specs: readonly FirmwareSpec[], imageBytes: number, www?: string): Promise<BuildServer> {
  const dirs = { out, keys: join(out, "keys"), tls: join(out, "tls"), firmware: join(out, "firmware"), www: www ?? join(out, "www") };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const key = generateKey("ecdsa-p256");
  writeKeyFiles(key, join(dirs.keys, "release.pem"), join(dirs.keys, "release.pub.pem"));
  const [root, rollout, commands] = [generateKey("ecdsa-p256"), generateKey("ecdsa-p256"), generateKey("ecdsa-p256")];
  writeKeyFiles(root, join(dirs.keys, "root.pem"), join(dirs.keys, "root.pub.pem"));
  writeKeyFiles(rollout, join(dirs.keys, "rollout.pem"), join(dirs.keys, "rollout.pub.pem"));
  writeKeyFiles(commands, join(dirs.keys, "commands.pem"), join(dirs.keys, "commands.pub.pem"));
  // signed at the devices' virtual epoch (their clock), valid ten years
  const rootEnvelope = signRoot({ version: 1, signedAt: DEFAULT_EPOCH, expires: DEFAULT_EPOCH + 3650 * 24 * 3600_000, roles: { root: { keys: [root] }, release: { keys: [key] }, rollout: { keys: [rollout] }, commands: { keys: [commands] } } }, [root]);
  writeFileSync(join(dirs.keys, "root.json"), rootEnvelope);
  const ca = await makeCa(dirs.tls, "xsota demo CA");
  const server = await makeServerCert(ca, { hosts: ["127.0.0.1", "localhost"] });
  writeFileSync(join(dirs.tls, "server.pem"), server.certPem);
  writeFileSync(join(dirs.tls, "server.key"), server.keyPem, { mode: 0o600 });
  const firmware = new Map<string, Firmware>();
  const unsigned = new Map<string, Uint8Array>();
  for (const spec of specs) {
    const from = spec.deltaFrom === undefined ? undefined : firmware.get(spec.deltaFrom);
    if (spec.deltaFrom !== undefined && !from) throw new RangeError(`${spec.version}: deltaFrom ${spec.deltaFrom} is not built before it`);
    const image = from ? nextBuild(unsigned.get(from.version)!, { version: spec.version, secureVersion: 1 }) : buildImage({ version: spec.version, secureVersion: 1, project: PRODUCT, size: imageBytes, behavior: spec.behavior });
    unsigned.set(spec.version, image);
    const bytes = signImage(image, [key], "v1");
    const file = join(dirs.firmware, `${PRODUCT}-${spec.version}.bin`);
    writeFileSync(file, bytes);
    const fw: Firmware = { ...spec, bytes, sha256: toHex(sha256(bytes)), file };
    if (from) {
      fw.patch = { from, bytes: createPatch(from.bytes, bytes, { compression: "heatshrink" }).patch };
      writeFileSync(join(dirs.firmware, `${PRODUCT}-${from.version}-${spec.version}.patch`), fw.patch.bytes);
    }
    firmware.set(spec.version, fw);
  }
  return { key, roles: { root, rollout, commands, rootEnvelope }, ca, server, firmware, dirs };
}

/** Publish one build into the static tree (images/<sha>.bin, deltas/<sha>.bin, products/...): returns its signed base envelope. */
export function publish(b: BuildServer, fw: Firmware, hostUrl: string, signedAt?: number): Uint8Array {
  fw.url = `${hostUrl}/images/${fw.sha256}.bin`;
  if (fw.patch) fw.patch.entry = deltaEntry({ base: fw.patch.from.bytes, patch: fw.patch.bytes, url: `${hostUrl}/deltas/${toHex(sha256(fw.patch.bytes))}.bin` });
  const deltas = fw.patch?.entry ? { deltas: [fw.patch.entry] } : {};
  const envelope = createManifest({ product: PRODUCT, channel: CHANNEL, version: fw.version, secureVersion: 1, url: fw.url, image: fw.bytes, keys: [b.key], notes: fw.note, ...deltas, ...(signedAt !== undefined ? { signedAt } : {}) });
  const { layout } = publishToDir(b.dirs.www, envelope, fw.bytes, { force: true, ...(fw.patch ? { patches: [fw.patch.bytes] } : {}) });
  // roles mode: devices fetch a rollout document (the rollout key's) carrying the release manifest
  writeFileSync(join(b.dirs.www, layout.latestPath), createRollout({ release: envelope, keys: [b.roles.rollout], ...(signedAt !== undefined ? { signedAt } : {}) }));
  return envelope;
}
