import { OtaError } from "../modules/errors";
import { provision, readProvisioned, PROVISION_KEYS, type Provisioned, type ProvisionValues } from "../modules/provision";
import { SimChip } from "../host-sim/chip/chip";
import { readFileSync } from "node:fs";
import { parse, printJson, requireFile, EXIT, type Command } from "./common";

export const command: Command = {
  name: "provision",
  summary: "write a simulated device's own values (id, groups, broker credentials) into its NVS",
  help: `Usage: xsota provision --flash flash.bin [--id ID] [--groups a,b] [--region R] [--user U]
                       [--password P] [--client-id C] [--broker mqtt://HOST:PORT]
                       [--decryption-key device.pem | --decryption-hmac-key device_hmac_key.bin] [--clear FIELD]... [--json]

Write per-device values into the simulated chip's NVS, domain "xsota.dev" (modules/provision.ts),
as a factory station would on a real device. The agent layers them over the image's configuration
(the manifest's defaults) at boot; the application's own overrides win over both. Every value is
checked before any is written. Without values, prints what is provisioned (the password and the
decryption keys masked).

Options:
  --flash F          the simulated flash file (xsota flash create), changed in place
  --id ID            device id used instead of the MAC (topics devices/<id>/..., rollout bucket)
  --groups LIST      comma-separated group names (targeting)
  --region R         region (targeting)
  --user U           MQTT user name (the device id under deploy/mosquitto/acl: warned otherwise)
  --password P       MQTT password
  --client-id C      MQTT client id (default: the device id)
  --broker URL       mqtt://HOST:PORT: broker host and port
  --decryption-key F the device's esp_encrypted_img private key (PEM: RSA-3072, or P-256 for ECIES)
  --decryption-hmac-key F  the ECIES eFuse HMAC key file (32 bytes, esp_enc_img_gen.py --generate_ecc_key)
  --clear FIELD      delete a value: ${Object.keys(PROVISION_KEYS).join(", ")} (repeatable)
  --json             print the provisioned values as JSON (the password masked)

Examples:
  xsota provision --flash flash.bin --id thermo-0042 --groups lab,north --user thermo-0042 --password s3cret
  xsota provision --flash flash.bin --clear password --clear username
`,
  async run(argv) {
    const { values: v } = parse(argv, {
      flash: { type: "string" },
      id: { type: "string" },
      groups: { type: "string" },
      region: { type: "string" },
      user: { type: "string" },
      password: { type: "string" },
      "client-id": { type: "string" },
      broker: { type: "string" },
      "decryption-key": { type: "string" },
      "decryption-hmac-key": { type: "string" },
      clear: { type: "string", multiple: true },
      json: { type: "boolean" },
    }, false);
    const path = requireFile(v.flash, "--flash");
    const values: ProvisionValues = {};
    if (v.id !== undefined) values.deviceId = v.id;
    if (v.groups !== undefined) values.groups = v.groups === "" ? [] : v.groups.split(",").map((g) => g.trim());
    if (v.region !== undefined) values.region = v.region;
    if (v.user !== undefined) values.username = v.user;
    if (v.password !== undefined) values.password = v.password;
    if (v["client-id"] !== undefined) values.clientId = v["client-id"];
    if (v.broker !== undefined) {
      let u: URL;
      try {
        u = new URL(v.broker);
      } catch {
        throw new OtaError("USAGE", `--broker ${v.broker}: not a URL (mqtt://HOST:PORT)`);
      }
      if (u.protocol !== "mqtt:" && u.protocol !== "mqtts:") throw new OtaError("USAGE", `--broker ${v.broker}: expected mqtt://HOST:PORT`);
      values.host = u.hostname.replace(/^\[|\]$/g, "");
      values.port = u.port ? Number(u.port) : u.protocol === "mqtts:" ? 8883 : 1883;
    }
    const file = (f: string) => {
      try {
        return readFileSync(f);
      } catch {
        throw new OtaError("FILE_NOT_FOUND", f);
      }
    };
    if (v["decryption-key"] !== undefined) values.decryptionKey = file(v["decryption-key"]).toString("utf8");
    if (v["decryption-hmac-key"] !== undefined) {
      const k = file(v["decryption-hmac-key"]);
      if (k.length !== 32) throw new OtaError("KEY_FORMAT", `${v["decryption-hmac-key"]}: an eFuse HMAC key is 32 bytes, not ${k.length}`);
      values.decryptionHmacKey = k.toString("hex");
    }
    for (const field of v.clear ?? []) {
      if (!(field in PROVISION_KEYS)) throw new OtaError("USAGE", `--clear ${field}: one of ${Object.keys(PROVISION_KEYS).join(", ")}`);
      if (field in values) throw new OtaError("USAGE", `--clear ${field} and a value for it`);
      (values as Record<string, null>)[field] = null;
    }
    const chip = SimChip.load(path);
    const changed = Object.keys(values).length > 0;
    const now = changed ? provision(chip.store(), values) : readProvisioned(chip.store());
    if (changed) chip.save(path);
    const mask = "*".repeat(8);
    const shown: Provisioned = {
      ...now,
      ...(now.password !== undefined ? { password: mask } : {}),
      ...(now.decryptionKey !== undefined ? { decryptionKey: mask } : {}),
      ...(now.decryptionHmacKey !== undefined ? { decryptionHmacKey: mask } : {}),
    };
    // deploy/mosquitto/acl lets a device write only under devices/<its user name>/: a user name that
    // is not the device id is allowed (other brokers, other ACLs) but said, not left to be found later
    if (now.username !== undefined && now.deviceId !== undefined && now.username !== now.deviceId) {
      process.stderr.write(`warning: MQTT user name ${now.username} is not the device id ${now.deviceId}: under deploy/mosquitto/acl the broker drops what this device publishes under devices/${now.deviceId}/ (provision --user ${now.deviceId})\n`);
    }
    if (v.json) printJson(shown);
    else {
      const rows = Object.entries(shown).map(([k, x]) => `  ${k.padEnd(9)} ${Array.isArray(x) ? x.join(",") : String(x)}`);
      process.stdout.write(`${changed ? "provisioned" : "provisioned values"} in ${path} (NVS xsota.dev):\n${rows.length ? rows.join("\n") : "  (none)"}\n`);
    }
    return EXIT.OK;
  },
};
