import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { toHex } from "../modules/bytes";
import { loadPrivateKey } from "../backend/release/keys";
import { signV1, signV2, verifySignedImage } from "../backend/release/espsecure";
import { trustedKeyOf } from "../backend/release/keys";
import { sha256 } from "../backend/crypto";
import { parse, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

export const command: Command = {
  name: "sign",
  summary: "sign a firmware image as espsecure.py sign_data does",
  help: `Usage: xsota sign --key key.pem [--key key2.pem ...] [--scheme v1|v2] [--append] fw.bin -o fw.signed.bin [--json]

Append an ECDSA P-256 signature in the format Espressif's espsecure.py sign_data writes.

  v1 (default)  Secure Boot v1 on ESP32: the image, then u32 0 and r||s (68 bytes). This is what
                the seed's "espsecure.py sign_data --keyfile K --output O firmware.bin" produced
                on ESP32 (v1 was its default). Deterministic: same key + image = same bytes as espsecure.
  v2            Secure Boot v2, ECDSA P-256: the image padded with 0xFF to 4 KB, then a 4 KB
                signature sector with up to 3 blocks (0xE7 magic, digest, key, r||s, CRC-32).
                Equivalent to "espsecure.py sign_data --version 2 --keyfile K ...". Several --key
                give several blocks (key rotation); --append adds blocks to a v2-signed file.

The device (modules/sigblock.ts) accepts both. The result is verified before it is written.

Options:
  -k, --key F       ECDSA P-256 private key PEM (xsota keygen or espsecure generate_signing_key);
                    --keyfile F is accepted too, as espsecure spells it
  --scheme S        v1 (default) or v2; --version 1|2 is accepted as in espsecure
  --append          v2 only: keep the valid blocks of an already signed input
  -o, --output F    signed file to write
  --json            print {scheme, keyIds, inputBytes, outputBytes, sha256}

Examples:
  xsota sign --key release.pem fw.bin -o fw.signed.bin
  xsota sign --keyfile release.pem --output signed_firmware.bin fw.bin      # espsecure.py's spelling
  xsota sign --scheme v2 --key release.pem fw.bin -o fw.v2.bin
`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      key: { type: "string", short: "k", multiple: true },
      keyfile: { type: "string", multiple: true },
      scheme: { type: "string" },
      version: { type: "string" },
      append: { type: "boolean" },
      output: { type: "string", short: "o" },
      json: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new OtaError("USAGE", "expected exactly one input image");
    const input = requireFile(positionals[0], "input image");
    const output = requireOption(values.output, "output");
    const keyFiles = [...(values.key ?? []), ...(values.keyfile ?? [])];
    if (!keyFiles.length) throw new OtaError("USAGE", "missing --key");
    const scheme = values.scheme ?? (values.version ? `v${values.version}` : "v1");
    if (scheme !== "v1" && scheme !== "v2") throw new OtaError("USAGE", `--scheme must be v1 or v2, not ${scheme}`);
    if (scheme === "v1" && (keyFiles.length > 1 || values.append)) throw new OtaError("USAGE", "Secure Boot v1 takes exactly one key and no --append");
    const keys = keyFiles.map((f) => loadPrivateKey(requireFile(f, "key file")));
    const image = new Uint8Array(readFileSync(input));
    if (!image.length) throw new OtaError("IMAGE_TRUNCATED", `${input} is empty`);
    const signed = scheme === "v1" ? signV1(image, keys[0]!) : signV2(image, keys, { append: !!values.append });
    for (const k of keys) verifySignedImage(signed, [trustedKeyOf(k)]);
    writeFileSync(output, signed);
    const info = { scheme, keyIds: keys.map((k) => k.id), input, output, inputBytes: image.length, outputBytes: signed.length, sha256: toHex(sha256(signed)) };
    if (values.json) printJson(info);
    else process.stdout.write(`signed ${input} (${image.length} bytes) with ${scheme} by ${info.keyIds.join(", ")} -> ${output} (${signed.length} bytes)\n`);
    return EXIT.OK;
  },
};
