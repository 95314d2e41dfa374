/*
 * xsota encrypt: an app image as an esp_encrypted_img file (ESP-IDF's pre-encrypted OTA format),
 * for the device holding the private half of --key. The scheme follows the key, as in
 * esp_enc_img_gen.py: RSA-3072 wraps a random AES-256-GCM key, P-256 is ECIES.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { toHex } from "../modules/bytes";
import { encryptImage, publicKeyOf, schemeOfKey, ENC_SCHEMES, type EncScheme } from "../backend/release/encrypted-img";
import { decryptCheck, keyText } from "./decrypt";
import { sha256 } from "../backend/crypto";
import { parse, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

export const command: Command = {
  name: "encrypt",
  summary: "encrypt an image for a device key (ESP-IDF esp_encrypted_img, RSA-3072 or ECIES P-256)",
  help: `Usage: xsota encrypt --key device.pub.pem [--scheme rsa3072|ecies-p256] -o fw.enc.bin fw.bin [--json]

Write fw.bin as a pre-encrypted image in ESP-IDF's esp_encrypted_img format, the format
esp_enc_img_gen.py writes and esp_https_ota's decrypt callback reads: a 512-byte header (magic
0x0788B6CF, the wrapped key, a 16-byte IV, the size, the GCM tag), then the AES-256-GCM
ciphertext. The key type picks the scheme: an RSA-3072 key wraps a random AES key with RSA
PKCS#1 v1.5; a P-256 key gets ECIES (an ephemeral P-256 key, ECDH, HKDF-SHA256). Each run draws
a new key and IV, so two runs give different files. With --check-key (the device's private key)
the file is decrypted and compared with fw.bin before it is written.

Sign the plain image first (xsota sign): the device decrypts, then checks the signature.

Options:
  -k, --key F       the device's public key (SPKI PEM; a private key PEM works too)
  --scheme S        rsa3072 or ecies-p256: refuse a key of the other kind (default: the key's)
  --check-key F     the device's private key: decrypt the result before writing it
  -o, --out F       encrypted file to write
  --json            print {in, out, scheme, plainBytes, plainSha256, encryptedBytes, encryptedSha256}

Examples:
  xsota encrypt --key device-rsa.pub.pem -o fw.enc.bin fw.bin
  xsota encrypt --key device-ecc.pub.pem --scheme ecies-p256 --check-key device-ecc.pem -o fw.ecc.enc.bin fw.bin --json
`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      key: { type: "string", short: "k" },
      scheme: { type: "string" },
      "check-key": { type: "string" },
      out: { type: "string", short: "o" },
      json: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new OtaError("USAGE", "expected one image file");
    const scheme = values.scheme as EncScheme | undefined;
    if (scheme !== undefined && !ENC_SCHEMES.includes(scheme)) throw new OtaError("USAGE", `--scheme must be rsa3072 or ecies-p256, not ${values.scheme}`);
    const input = positionals[0]!;
    const image = new Uint8Array(readFileSync(requireFile(input, "image file")));
    const key = keyText(requireOption(values.key, "key"), "--key");
    const out = requireOption(values.out, "out");
    const file = encryptImage(image, { publicKey: key, ...(scheme ? { scheme } : {}) });
    if (values["check-key"]) decryptCheck(file, keyText(values["check-key"], "--check-key"), image);
    writeFileSync(out, file);
    const report = {
      in: input,
      out,
      scheme: schemeOfKey(publicKeyOf(key)),
      plainBytes: image.length,
      plainSha256: toHex(sha256(image)),
      encryptedBytes: file.length,
      encryptedSha256: toHex(sha256(file)),
      checked: !!values["check-key"],
    };
    if (values.json) printJson(report);
    else process.stdout.write(`${report.scheme} ${out}: ${report.encryptedBytes} bytes (512-byte header + ${image.length}), SHA-256 ${report.encryptedSha256}${report.checked ? "; decrypts with --check-key" : ""}\n`);
    return EXIT.OK;
  },
};

