import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { toHex, utf8Decode } from "../modules/bytes";
import { parseImageStart } from "../modules/image";
import { detectScheme } from "../modules/sigblock";
import { parseEnvelope } from "../modules/manifest";
import { loadPrivateKey } from "../backend/release/keys";
import { createManifest, deltaEntry, type ManifestInput } from "../backend/release/manifest-tool";
import { encryptionEntry } from "../backend/release/encrypted-img";
import { sha256 } from "../backend/crypto";
import { parse, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

export const command: Command = {
  name: "manifest",
  summary: "write a signed update manifest for an image",
  help: `Usage: xsota manifest --image fw.signed.bin --url URL --key key.pem [options] -o release.json

Read version, project name, secure_version and chip id from the image's esp_app_desc_t and
header, compute its size and SHA-256, and write the signed manifest envelope:
  {"payload": base64(manifest JSON), "signatures": [{"keyId", "alg": "ES256"|"RS256", "sig"}]}
Each signature is over the exact payload bytes (ES256: raw r||s; RS256: PKCS#1 v1.5 SHA-256).

Options:
  --image F            the image as it will be published (usually signed by xsota sign), or
                       with --encrypted the plain image inside it
  --encrypted F        publish this esp_encrypted_img file (xsota encrypt) instead: url, size and
                       SHA-256 are the encrypted file's, "encryption" names the scheme and the
                       plain image's size and SHA-256 (devices check both); not with --delta
  --url URL            where devices download it; a URL ending in "/" gets images/<sha256>.bin
                       appended (the name xsota publish gives it)
  -k, --key F          signing key (ECDSA P-256 or RSA-2048 PEM); repeat to sign with several keys
  --key-id ID          id for the matching --key (default: first 8 bytes of SHA-256(SPKI), hex)
  --product P          default: the image's project name
  --version V          default: the image's version (must be semver)
  --secure-version N   default: the image's secure_version (0 in a build without ESP-IDF's anti-rollback:
                       then N is the agent's floor, docs/esp32.md "Anti-rollback")
  --channel C          e.g. stable, beta (publish puts latest.json under it; default stable)
  --hardware a,b       hardware revisions targeted
  --groups a,b         device groups targeted
  --regions a,b        regions targeted
  --rollout-id R       staged rollout id (devices hash their id with it)
  --percent N          rollout percentage 0..100 (with --rollout-id)
  --force              critical release: overrides the maintenance window and rollout percentage
  --min-version X      devices below X must update through an intermediate release first
  --not-before DATE    ISO date or ms since the epoch
  --expires DATE       ISO date or ms since the epoch (default: 365 days after signing; mandatory in
                       every manifest: devices refuse expired metadata, MANIFEST_EXPIRED)
  --meta-version N     metadata version, only growing per product/channel (default: the signing time,
                       ms; devices refuse one lower than they have accepted, MANIFEST_REPLAY)
  --notes TEXT         release notes (<= 2048 characters)
  --delta F            a detools patch to this image (xsota delta create); repeatable, each with
  --delta-from F       the image it was made from, as devices run it (its version, size and SHA-256
                       are signed: a device takes the patch only when it runs exactly that image)
  --delta-url URL      where devices download the patch (default with a --url ending in "/":
                       deltas/<sha256>.bin, the name xsota publish gives it); one per --delta
  -o, --output F       envelope to write
  --json               print the manifest and key ids

Examples:
  xsota manifest --image fw.signed.bin --url https://updates.example.com/ \\
    --key release.pem --hardware esp32-rev3 --rollout-id r-2026-11 --percent 5 -o release.json
  xsota manifest --image fw-2.1.4.signed.bin --url https://updates.example.com/ --key release.pem \\
    --delta 2.1.3-2.1.4.patch --delta-from fw.signed.bin -o release-2.1.4.json
  xsota manifest --image fw.bin --encrypted fw.enc.bin --url https://updates.example.com/ --key release.pem -o release-enc.json --json
`,
  async run(argv) {
    const { values } = parse(argv, {
      image: { type: "string" },
      encrypted: { type: "string" },
      url: { type: "string" },
      key: { type: "string", short: "k", multiple: true },
      "key-id": { type: "string", multiple: true },
      product: { type: "string" },
      version: { type: "string" },
      "secure-version": { type: "string" },
      channel: { type: "string" },
      hardware: { type: "string" },
      groups: { type: "string" },
      regions: { type: "string" },
      "rollout-id": { type: "string" },
      percent: { type: "string" },
      force: { type: "boolean" },
      "min-version": { type: "string" },
      "not-before": { type: "string" },
      expires: { type: "string" },
      "meta-version": { type: "string" },
      notes: { type: "string" },
      delta: { type: "string", multiple: true },
      "delta-from": { type: "string", multiple: true },
      "delta-url": { type: "string", multiple: true },
      output: { type: "string", short: "o" },
      json: { type: "boolean" },
    }, false);
    const imagePath = requireFile(values.image, "--image");
    const output = requireOption(values.output, "output");
    let url = requireOption(values.url, "url");
    // The device refuses anything but https: (and a relative URL resolved against the manifest's).
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !/^https:\/\//i.test(url)) throw new OtaError("HTTP_INSECURE_URL", `--url ${url}: devices download only over https:`);
    const keyFiles = values.key ?? [];
    if (!keyFiles.length) throw new OtaError("USAGE", "missing --key");
    const ids = values["key-id"] ?? [];
    if (ids.length > keyFiles.length) throw new OtaError("USAGE", "more --key-id than --key");
    const keys = keyFiles.map((f) => loadPrivateKey(requireFile(f, "key file")));
    const image = new Uint8Array(readFileSync(imagePath));
    let desc: ReturnType<typeof parseImageStart> | undefined;
    try {
      desc = parseImageStart(image.subarray(0, 0x20 + 256 + 8));
    } catch (e) {
      if (!(values.product && values.version && values["secure-version"] !== undefined)) throw e;
    }
    if (values.encrypted && values.delta?.length) throw new OtaError("USAGE", "--encrypted does not go with --delta: a plain patch would give the image away");
    const deltas = deltaEntries(values.delta ?? [], values["delta-from"] ?? [], values["delta-url"] ?? [], url);
    const encrypted = values.encrypted ? new Uint8Array(readFileSync(requireFile(values.encrypted, "--encrypted"))) : undefined;
    const encryption = encrypted ? encryptionEntry(encrypted, image) : undefined;
    const published = encrypted ?? image;
    if (url.endsWith("/")) url += `images/${toHex(sha256(published))}.bin`;
    const list = (s: string | undefined) => (s === undefined ? undefined : s.split(",").map((x) => x.trim()).filter(Boolean));
    const int = (s: string, name: string) => {
      if (!/^\d+$/.test(s)) throw new OtaError("USAGE", `--${name} must be a non-negative integer`);
      return Number(s);
    };
    const date = (s: string | undefined, name: string) => {
      if (s === undefined) return undefined;
      const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
      if (!Number.isFinite(ms)) throw new OtaError("USAGE", `--${name}: not a date: ${s}`);
      return ms;
    };
    if ((values["rollout-id"] === undefined) !== (values.percent === undefined)) throw new OtaError("USAGE", "--rollout-id and --percent go together");
    const input: ManifestInput = {
      product: values.product ?? desc!.appDesc.projectName,
      version: values.version ?? desc!.appDesc.version,
      secureVersion: values["secure-version"] !== undefined ? int(values["secure-version"], "secure-version") : desc!.appDesc.secureVersion,
      url,
      image: published,
      hardware: list(values.hardware),
      groups: list(values.groups),
      regions: list(values.regions),
      rollout: values["rollout-id"] !== undefined ? { id: values["rollout-id"], percent: Number(values.percent) } : undefined,
      force: values.force ? true : undefined,
      minVersion: values["min-version"],
      notBefore: date(values["not-before"], "not-before"),
      expires: date(values.expires, "expires"),
      metaVersion: values["meta-version"] !== undefined ? int(values["meta-version"], "meta-version") : undefined,
      channel: values.channel,
      notes: values.notes,
      chip: desc?.header.chipId,
      signedImage: detectScheme((o, t) => t.set(image.subarray(o, o + t.length)), image.length) !== null ? true : undefined,
      deltas: deltas.length ? deltas : undefined,
      encryption,
    } as ManifestInput;
    if (existsSync(output) && output === imagePath) throw new OtaError("USAGE", "output would overwrite the image");
    const envelope = createManifest({ ...input, keys, keyIds: ids });
    writeFileSync(output, envelope);
    const manifest = JSON.parse(utf8Decode(parseEnvelope(envelope).payload));
    if (values.json) printJson({ output, bytes: envelope.length, keyIds: keys.map((k, i) => ids[i] ?? k.id), manifest });
    else {
      process.stdout.write(`manifest ${manifest.product} ${manifest.version} (${published.length} bytes${encryption ? `, ${encryption.scheme}-encrypted` : ""}, sha256 ${manifest.sha256.slice(0, 16)}...) signed by ${keys.map((k, i) => ids[i] ?? k.id).join(", ")} -> ${output}\n`);
      for (const d of deltas) process.stdout.write(`  delta from ${d.from.version} (${d.from.sha256.slice(0, 16)}...): ${d.size} bytes, ${((d.size * 100) / image.length).toFixed(1)} % of the image, ${d.compression}\n`);
    }
    return EXIT.OK;
  },
};

/** --delta/--delta-from/--delta-url triples -> signed delta entries. Throws USAGE, FILE_NOT_FOUND, IMAGE_*, DELTA_*, HTTP_INSECURE_URL. */
function deltaEntries(patches: string[], bases: string[], urls: string[], imageUrl: string) {
  if (patches.length !== bases.length) throw new OtaError("USAGE", "each --delta needs its --delta-from (the image the patch was made from)");
  if (urls.length && urls.length !== patches.length) throw new OtaError("USAGE", "give one --delta-url per --delta, or none (with a --url ending in /)");
  if (!urls.length && patches.length && !imageUrl.endsWith("/")) throw new OtaError("USAGE", "--delta-url is needed when --url names the image itself");
  return patches.map((f, i) => {
    const patch = new Uint8Array(readFileSync(requireFile(f, "--delta")));
    const base = new Uint8Array(readFileSync(requireFile(bases[i], "--delta-from")));
    const url = urls[i] ?? `${imageUrl}deltas/${toHex(sha256(patch))}.bin`;
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !/^https:\/\//i.test(url)) throw new OtaError("HTTP_INSECURE_URL", `--delta-url ${url}: devices download only over https:`);
    return deltaEntry({ base, patch, url });
  });
}
