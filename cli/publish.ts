import { readFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { loadPublicKey, trustedKeyOf } from "../backend/release/keys";
import { publishToDir, publishToS3, s3Client, type PublishResult } from "../backend/release/publish";
import { parse, printJson, requireFile, EXIT, type Command } from "./common";

export const command: Command = {
  name: "publish",
  summary: "lay out a release for a static host or an S3 bucket",
  help: `Usage: xsota publish (--dir public/ | --s3 s3://bucket[/prefix]) release.json fw.signed.bin [options]

Lay out a release so a static host (a CDN, an S3 bucket, xsota serve) can serve it:
  images/<sha256>.bin                          the image (content-addressed, immutable)
  deltas/<sha256>.bin                          each --delta patch (content-addressed, immutable)
  products/<product>/<channel>/<version>.json  the signed manifest of this release (immutable)
  products/<product>/<channel>/latest.json     the manifest devices poll (Cache-Control: no-cache)
  products/<product>/<channel>/index.json      the versions published so far
The image and patches go first and latest.json last. The manifest's size and SHA-256 must match
the image, and each --delta one of the manifest's deltas.
Publishing an older version than the current latest, or changing a published version, is refused
unless --force.

Options:
  --dir D          publish into a directory (atomic writes)
  --s3 URL         publish into an S3-compatible bucket (AWS SDK; credentials from the usual
                   AWS_* environment variables or profile)
  --endpoint URL   S3 endpoint for a non-AWS service (MinIO, Ceph, R2, ...); path-style addressing
  --region R       S3 region (default AWS_REGION or us-east-1)
  --channel C      default: the manifest's channel, else "stable"
  --pub F          verify the manifest with this public key first (repeatable)
  --delta F        a patch the manifest lists (xsota manifest --delta); repeatable
  --force          allow an older latest / a changed published version
  --json           print what was written

Examples:
  xsota publish --dir public/ release.json fw.signed.bin
  xsota publish --dir public/ release-2.1.4.json fw-2.1.4.signed.bin --delta 2.1.3-2.1.4.patch
  xsota publish --s3 s3://fw-releases/prod --endpoint http://127.0.0.1:9000 release.json fw.signed.bin   # MinIO, s3rver, ... there
`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      dir: { type: "string" },
      s3: { type: "string" },
      endpoint: { type: "string" },
      region: { type: "string" },
      channel: { type: "string" },
      pub: { type: "string", multiple: true },
      delta: { type: "string", multiple: true },
      force: { type: "boolean" },
      json: { type: "boolean" },
    });
    if (positionals.length !== 2) throw new OtaError("USAGE", "expected release.json and the image");
    if (!values.dir === !values.s3) throw new OtaError("USAGE", "give exactly one of --dir or --s3");
    const envelope = new Uint8Array(readFileSync(requireFile(positionals[0], "manifest")));
    const image = new Uint8Array(readFileSync(requireFile(positionals[1], "image")));
    const keys = values.pub?.map((f) => trustedKeyOf(loadPublicKey(requireFile(f, "public key"))));
    const patches = values.delta?.map((f) => new Uint8Array(readFileSync(requireFile(f, "--delta"))));
    const options = { ...(keys ? { keys } : {}), ...(values.channel ? { channel: values.channel } : {}), ...(patches ? { patches } : {}), force: !!values.force };
    let result: PublishResult;
    let where: string;
    if (values.dir) {
      result = publishToDir(values.dir, envelope, image, options);
      where = values.dir;
    } else {
      const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(values.s3!);
      if (!m) throw new OtaError("USAGE", `--s3 must look like s3://bucket/prefix, not ${values.s3}`);
      const client = s3Client({ ...(values.endpoint ? { endpoint: values.endpoint } : {}), ...(values.region ? { region: values.region } : {}) });
      try {
        result = await publishToS3({ client, bucket: m[1]!, prefix: m[2] || undefined }, envelope, image, options);
      } finally {
        client.destroy();
      }
      where = values.s3!;
    }
    for (const w of result.layout.warnings) process.stderr.write(`warning: ${w}\n`);
    const m = result.layout.manifest;
    if (values.json) printJson({ where, product: m.product, version: m.version, channel: result.layout.channel, image: result.layout.imagePath, deltas: result.layout.files.filter((f) => f.path.startsWith("deltas/")).map((f) => f.path), latest: result.layout.latestPath, written: result.written, skipped: result.skipped, warnings: result.layout.warnings });
    else {
      process.stdout.write(`published ${m.product} ${m.version} (${result.layout.channel}) to ${where}\n`);
      for (const f of result.written) process.stdout.write(`  wrote   ${f}\n`);
      for (const f of result.skipped) process.stdout.write(`  kept    ${f} (already there)\n`);
    }
    return EXIT.OK;
  },
};
