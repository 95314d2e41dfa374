import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { generateKey, writeKeyFiles, keyConfigOf, publicKeyPem } from "../backend/release/keys";
import { deviceKeyFromHmacKey, generateDeviceKey } from "../backend/release/encrypted-img";
import { parse, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

const TYPES = ["ecdsa-p256", "rsa-2048", "rsa-3072", "ecies-p256"] as const;

export const command: Command = {
  name: "keygen",
  summary: "generate a signing key or a device decryption key",
  help: `Usage: xsota keygen [--type ecdsa-p256|rsa-2048|rsa-3072|ecies-p256] -o key.pem [--pub pub.pem] [--force] [--json]
       xsota keygen --type ecies-p256 --hmac-key device_hmac_key.bin -o key.pem [--pub pub.pem]

Generate a signing key, or a device's key for pre-encrypted images (xsota encrypt / decrypt,
ESP-IDF's esp_encrypted_img). The private key is written as PEM (ECDSA: "EC PRIVATE KEY", the
form espsecure.py generate_signing_key writes, so espsecure can sign with it too; the others:
PKCS#8, which esp_enc_img_gen.py reads). Image signatures (xsota sign) need ECDSA P-256;
manifests take ECDSA P-256 or RSA-2048.

Device decryption keys: the public half goes to the build server (xsota encrypt --key), the
private half stays on the device. rsa-3072 is esp_encrypted_img's RSA scheme; ecies-p256 its
ECIES scheme, where an ESP32 derives its P-256 key from an eFuse HMAC key: --hmac-key takes that
32-byte key (esp_enc_img_gen.py --generate_ecc_key writes it as device_hmac_key.bin) and writes
the P-256 key the chip derives from it.

Options:
  --type T        ecdsa-p256 (default), rsa-2048, rsa-3072 or ecies-p256
  --hmac-key F    ecies-p256: derive the key from this eFuse HMAC key instead of at random
  -o, --out F     private key file (written with mode 0600)
  --pub F         also write the public key (SubjectPublicKeyInfo PEM)
  --force         overwrite existing files
  --json          print {id, type, out, pub, keyConfig} (signing keys: keyConfig goes in the
                  device's trustedKeys) or {type, out, pub, publicKeyPem} (decryption keys)

Examples:
  xsota keygen -o release.pem --pub release.pub.pem
  xsota keygen --type rsa-2048 -o manifest-rsa.pem --pub manifest-rsa.pub.pem --json
  xsota keygen --type rsa-3072 -o device-rsa.pem --pub device-rsa.pub.pem
  xsota keygen --type ecies-p256 -o device-ecc.pem --pub device-ecc.pub.pem
`,
  async run(argv) {
    const { values } = parse(argv, {
      type: { type: "string", default: "ecdsa-p256" },
      "hmac-key": { type: "string" },
      out: { type: "string", short: "o" },
      pub: { type: "string" },
      force: { type: "boolean" },
      json: { type: "boolean" },
    }, false);
    const type = values.type as (typeof TYPES)[number];
    if (!TYPES.includes(type)) throw new OtaError("USAGE", `--type must be one of ${TYPES.join(", ")}, not ${values.type}`);
    if (values["hmac-key"] && type !== "ecies-p256") throw new OtaError("USAGE", "--hmac-key goes with --type ecies-p256");
    const out = requireOption(values.out, "out");
    for (const f of [out, values.pub]) if (f && existsSync(f) && !values.force) throw new OtaError("USAGE", `${f} exists (use --force to overwrite)`);
    if (type === "rsa-3072" || type === "ecies-p256") {
      const hmac = values["hmac-key"];
      const pair = hmac ? deviceKeyFromHmacKey(new Uint8Array(readFileSync(requireFile(hmac, "--hmac-key file")))) : generateDeviceKey(type === "rsa-3072" ? "rsa3072" : "ecies-p256");
      const pub = pair.publicKey.export({ type: "spki", format: "pem" }) as string;
      writeFileSync(out, pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
      if (values.pub) writeFileSync(values.pub, pub);
      if (values.json) printJson({ type, out, pub: values.pub ?? null, publicKeyPem: pub, ...(hmac ? { hmacKey: hmac } : {}) });
      else process.stdout.write(`${type} device key ${hmac ? `derived from ${hmac} ` : ""}written to ${out}${values.pub ? `, public key to ${values.pub}` : ""}\n`);
      return EXIT.OK;
    }
    const key = generateKey(type);
    writeKeyFiles(key, out, values.pub);
    const keyConfig = keyConfigOf(key);
    if (values.json) printJson({ id: key.id, type, out, pub: values.pub ?? null, keyConfig, publicKeyPem: publicKeyPem(key) });
    else process.stdout.write(`${type} key ${key.id} written to ${out}${values.pub ? `, public key to ${values.pub}` : ""}\n`);
    return EXIT.OK;
  },
};
