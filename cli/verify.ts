import { readFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { toHex } from "../modules/bytes";
import { verifyManifest } from "../modules/manifest";
import { parseImageStart } from "../modules/image";
import type { TrustedKey } from "../modules/keys";
import { loadPublicKey, trustedKeyOf } from "../backend/release/keys";
import { verifySignedImage, signatureInfo } from "../backend/release/espsecure";
import { nodeCrypto, sha256 } from "../backend/crypto";
import { parse, printJson, requireFile, EXIT, type Command } from "./common";

export const command: Command = {
  name: "verify",
  summary: "verify a signed firmware image or manifest",
  help: `Usage: xsota verify --pub pub.pem [--pub ...] [--revoked ID,...] FILE [--image fw.signed.bin] [--json]

Verify FILE with the device's own code (modules/sigblock.ts, modules/manifest.ts):
  - a signed image (espsecure sign_data v1 or v2, ECDSA P-256), or
  - a signed manifest (JSON envelope; ES256 or RS256). With --image, the image's size and
    SHA-256 must match the manifest too.
Exit 0 only when valid; otherwise the error names what failed (SIG_INVALID, SIG_DIGEST,
SIG_UNKNOWN_KEY, SIG_REVOKED_KEY, SIG_MISSING, SIG_FORMAT, MANIFEST_*, DOWNLOAD_*).

Options:
  --pub F          trusted public key: PEM (a private key PEM works too) or the raw 64-byte X||Y
                   of espsecure.py extract_public_key --version 1; repeat for several
  --revoked IDS    key ids to treat as revoked (comma-separated)
  --image F        with a manifest: the image it describes
  --json           print the result as JSON

Examples:
  xsota verify --pub release.pub.pem fw.signed.bin
  xsota verify --pub release.pub.pem release.json --image fw.signed.bin --json
`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      pub: { type: "string", multiple: true },
      revoked: { type: "string" },
      image: { type: "string" },
      json: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new OtaError("USAGE", "expected exactly one file to verify");
    const file = requireFile(positionals[0], "file to verify");
    if (!values.pub?.length) throw new OtaError("USAGE", "missing --pub");
    const revoked = new Set((values.revoked ?? "").split(",").map((s) => s.trim()).filter(Boolean));
    const keys: TrustedKey[] = values.pub.map((f) => {
      const info = loadPublicKey(requireFile(f, "public key"));
      return trustedKeyOf(info, revoked.has(info.id));
    });
    const bytes = new Uint8Array(readFileSync(file));
    const isManifest = bytes.length > 0 && bytes.length <= 65536 && /^\s*\{/.test(Buffer.from(bytes.subarray(0, 16)).toString("latin1"));
    if (isManifest) {
      const { manifest, keyId } = verifyManifest(bytes, keys, nodeCrypto);
      if (values.image) {
        const image = new Uint8Array(readFileSync(requireFile(values.image, "image")));
        if (image.length !== manifest.size) throw new OtaError("DOWNLOAD_SIZE", `manifest says ${manifest.size} bytes, ${values.image} has ${image.length}`);
        const h = toHex(sha256(image));
        if (h !== manifest.sha256) throw new OtaError("DOWNLOAD_HASH", `manifest says ${manifest.sha256}, ${values.image} is ${h}`);
      }
      if (values.json) printJson({ kind: "manifest", valid: true, keyId, manifest });
      else process.stdout.write(`manifest OK: ${manifest.product} ${manifest.version} signed by ${keyId}${values.image ? ", image matches" : ""}\n`);
      return EXIT.OK;
    }
    if (values.image) throw new OtaError("USAGE", "--image goes with a manifest, and FILE is not one");
    const r = verifySignedImage(bytes, keys);
    let app: { project: string; version: string; secureVersion: number; chipId: number } | null = null;
    try {
      const { header, appDesc } = parseImageStart(bytes.subarray(0, Math.min(r.imageLength, 0x20 + 256 + 8)));
      app = { project: appDesc.projectName, version: appDesc.version, secureVersion: appDesc.secureVersion, chipId: header.chipId };
    } catch {
      app = null; // signed data that is not an ESP app image: the signature is still what was asked about
    }
    if (values.json) printJson({ kind: "image", valid: true, ...r, blocks: signatureInfo(bytes).blocks.length, app });
    else process.stdout.write(`image signature OK: ${r.scheme}, ${r.imageLength} image bytes, key ${r.keyId}${app ? ` (${app.project} ${app.version}, secure_version ${app.secureVersion})` : ""}\n`);
    return EXIT.OK;
  },
};
