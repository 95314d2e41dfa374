/*
 * xsota decrypt: the plain image inside an esp_encrypted_img file, checked as the device checks
 * it (magic, key, size against the header, GCM tag), each failure with its code.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import { OtaError } from "../modules/errors";
import { bytesEqual, toHex } from "../modules/bytes";
import { decryptImage, deviceKeyFromHmacKey } from "../backend/release/encrypted-img";
import { sha256 } from "../backend/crypto";
import { parse, parseSize, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

/** A key file's text. Throws FILE_NOT_FOUND. */
export function keyText(path: string, what: string): string {
  return readFileSync(requireFile(path, what), "utf8");
}

/** Decrypt `file` with `privateKey` and insist on `plain`: the check behind encrypt --check-key. */
export function decryptCheck(file: Uint8Array, privateKey: string | KeyObject, plain: Uint8Array): void {
  const back = decryptImage(file, privateKey).plaintext;
  if (!bytesEqual(back, plain)) throw new OtaError("INTERNAL", "the encrypted file does not decrypt to the image");
}

export const command: Command = {
  name: "decrypt",
  summary: "decrypt an esp_encrypted_img file with the device's key, checking its tag",
  help: `Usage: xsota decrypt --key device.pem -o fw.bin fw.enc.bin [--max-size SIZE] [--json]
       xsota decrypt --hmac-key device_hmac_key.bin -o fw.bin fw.enc.bin

Decrypt a pre-encrypted image (ESP-IDF's esp_encrypted_img format, made by xsota encrypt or
esp_enc_img_gen.py) with the device's private key, and check it as the device does: the magic
(ENC_MAGIC), the key (ENC_KEY), the size the header announces against --max-size and against the
file (ENC_OVERSIZED, ENC_TRUNCATED), then the AES-GCM tag (ENC_TAG). Nothing is written unless
every check passes. The scheme follows the key: RSA-3072 or P-256 (ECIES). With ECIES a file
made for another device's key fails as ENC_TAG: the format carries no key check value.

Options:
  -k, --key F       the device's private key (PEM: PKCS#8, PKCS#1 or SEC1)
  --hmac-key F      ECIES: the device's 32-byte eFuse HMAC key instead (device_hmac_key.bin)
  --max-size SIZE   refuse a file announcing a larger image (default 1.5M, one OTA slot)
  -o, --out F       plain image to write
  --json            print {in, out, scheme, plainBytes, plainSha256, encryptedBytes, encryptedSha256}

Examples:
  xsota decrypt --key device-rsa.pem -o fw.dec.bin fw.enc.bin
  xsota decrypt --key device-ecc.pem -o fw.ecc.dec.bin fw.ecc.enc.bin --json
`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      key: { type: "string", short: "k" },
      "hmac-key": { type: "string" },
      "max-size": { type: "string" },
      out: { type: "string", short: "o" },
      json: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new OtaError("USAGE", "expected one encrypted file");
    if (!!values.key === !!values["hmac-key"]) throw new OtaError("USAGE", "give --key or --hmac-key (one of them)");
    const input = positionals[0]!;
    const file = new Uint8Array(readFileSync(requireFile(input, "encrypted file")));
    const key = values.key
      ? keyText(values.key, "--key")
      : deviceKeyFromHmacKey(new Uint8Array(readFileSync(requireFile(values["hmac-key"], "--hmac-key file")))).privateKey;
    const out = requireOption(values.out, "out");
    const maxSize = values["max-size"] ? parseSize(values["max-size"]) : 1536 * 1024;
    const { plaintext, scheme } = decryptImage(file, key, { maxSize });
    writeFileSync(out, plaintext);
    const report = {
      in: input,
      out,
      scheme,
      plainBytes: plaintext.length,
      plainSha256: toHex(sha256(plaintext)),
      encryptedBytes: file.length,
      encryptedSha256: toHex(sha256(file)),
    };
    if (values.json) printJson(report);
    else process.stdout.write(`${scheme} ${input}: tag verified, ${plaintext.length} bytes -> ${out}, SHA-256 ${report.plainSha256}\n`);
    return EXIT.OK;
  },
};
