import { existsSync } from "node:fs";
import { OtaError } from "../../modules/errors";
import { generateKey, writeKeyFiles, keyConfigOf, publicKeyPem } from "../release/keys";
import { parse, printJson, requireOption, EXIT, type Command } from "./common";

export const command: Command = {
  name: "keygen",
  summary: "generate an ECDSA P-256 or RSA-2048 signing key",
  help: `Usage: xsota keygen [--type ecdsa-p256|rsa-2048] -o key.pem [--pub pub.pem] [--force] [--json]

Generate a signing key. The private key is written as PEM (ECDSA: "EC PRIVATE KEY", the form
espsecure.py generate_signing_key writes, so espsecure can sign with it too; RSA: PKCS#8).
Image signatures (xsota sign) need ECDSA P-256; manifests take either.

Options:
  --type T      ecdsa-p256 (default) or rsa-2048
  -o, --out F   private key file (written with mode 0600)
  --pub F       also write the public key (SubjectPublicKeyInfo PEM) for devices and verify
  --force       overwrite existing files
  --json        print {id, type, out, pub, keyConfig} (keyConfig goes in the device's trustedKeys)

Examples:
  xsota keygen -o release.pem --pub release.pub.pem
  xsota keygen --type rsa-2048 -o manifest-rsa.pem --pub manifest-rsa.pub.pem --json
`,
  async run(argv) {
    const { values } = parse(argv, {
      type: { type: "string", default: "ecdsa-p256" },
      out: { type: "string", short: "o" },
      pub: { type: "string" },
      force: { type: "boolean" },
      json: { type: "boolean" },
    }, false);
    const type = values.type;
    if (type !== "ecdsa-p256" && type !== "rsa-2048") throw new OtaError("USAGE", `--type must be ecdsa-p256 or rsa-2048, not ${type}`);
    const out = requireOption(values.out, "out");
    for (const f of [out, values.pub]) if (f && existsSync(f) && !values.force) throw new OtaError("USAGE", `${f} exists (use --force to overwrite)`);
    const key = generateKey(type);
    writeKeyFiles(key, out, values.pub);
    const keyConfig = keyConfigOf(key);
    if (values.json) printJson({ id: key.id, type, out, pub: values.pub ?? null, keyConfig, publicKeyPem: publicKeyPem(key) });
    else process.stdout.write(`${type} key ${key.id} written to ${out}${values.pub ? `, public key to ${values.pub}` : ""}\n`);
    return EXIT.OK;
  },
};
