/*
 * Named error codes, in the spirit of esp_err_to_name: one table, grouped per subsystem,
 * each with a stable number (base per subsystem, like ESP_ERR_OTA_BASE + n) and a message. The
 * CLI's hint per code lives on the host (cli/error-hints.ts), out of the device's link.
 * Bad arguments stay TypeError/RangeError, as in Moddable; OtaError is for conditions.
 *
 * Add new codes at the end of their group; never renumber (numbers are stored in NVS and
 * reported to the fleet).
 */
import { constant } from "./constant";

export const ERROR_TABLE = constant({
  // Flash and partitions (0x100)
  FLASH_NO_PARTITION: [0x101, "no partition with that label"],
  FLASH_OUT_OF_BOUNDS: [0x102, "flash access outside the partition"],
  FLASH_NOT_ERASED: [0x103, "write to flash that was not erased"],
  FLASH_MISALIGNED: [0x104, "flash erase not on a block boundary"],
  FLASH_POWER_CUT: [0x105, "power was cut during a flash operation"],
  FLASH_READBACK: [0x106, "bytes read back from flash differ from those written"],

  // Partition table (0x200)
  PTABLE_SYNTAX: [0x201, "partition table CSV line cannot be parsed"],
  PTABLE_OVERLAP: [0x202, "partitions overlap"],
  PTABLE_ALIGN: [0x203, "partition offset or size misaligned"],
  PTABLE_DUPLICATE: [0x204, "duplicate partition name"],
  PTABLE_TYPE: [0x205, "unknown partition type or subtype"],
  PTABLE_TOO_LARGE: [0x206, "partition table does not fit the flash"],
  PTABLE_BINARY: [0x207, "binary partition table is corrupt"],

  // otadata and boot selection (0x300)
  OTADATA_CORRUPT: [0x301, "both otadata entries are invalid"],
  OTADATA_WRITE: [0x302, "writing otadata failed"],
  OTADATA_STATE: [0x303, "otadata is not in a state that allows this operation"],
  BOOT_NO_IMAGE: [0x304, "no slot holds a bootable image: the device is bricked"],

  // App image format (0x400)
  IMAGE_MAGIC: [0x401, "not an ESP app image (magic 0xE9 missing)"],
  IMAGE_SEGMENTS: [0x402, "image segment table is invalid"],
  IMAGE_CHECKSUM: [0x403, "image XOR checksum mismatch"],
  IMAGE_HASH: [0x404, "image appended SHA-256 mismatch"],
  IMAGE_APP_DESC: [0x405, "esp_app_desc_t missing or invalid"],
  IMAGE_CHIP: [0x406, "image built for another chip"],
  IMAGE_TRUNCATED: [0x407, "image is shorter than its headers say"],
  IMAGE_TOO_LARGE: [0x408, "image does not fit the update slot"],
  IMAGE_PROJECT: [0x409, "image is for another project"],
  IMAGE_VERSION: [0x40a, "image version differs from the manifest's"],
  IMAGE_SECURE_VERSION: [0x40b, "image secure_version (esp_app_desc_t) differs from the manifest's"],

  // Signatures and keys (0x500)
  SIG_MISSING: [0x501, "no signature where one is required"],
  SIG_INVALID: [0x502, "signature does not verify"],
  SIG_UNKNOWN_KEY: [0x503, "signed with a key the device does not trust"],
  SIG_REVOKED_KEY: [0x504, "signed with a revoked key"],
  SIG_FORMAT: [0x505, "signature block is malformed"],
  SIG_DIGEST: [0x506, "signature block digest does not match the image"],
  KEY_FORMAT: [0x507, "key file cannot be parsed"],
  KEY_TYPE: [0x508, "key type not supported"],

  // Manifest (0x600)
  MANIFEST_SYNTAX: [0x601, "manifest is not valid JSON"],
  MANIFEST_FIELD: [0x602, "manifest field missing or of the wrong type"],
  MANIFEST_TOO_LARGE: [0x603, "manifest larger than the device accepts"],
  MANIFEST_EXPIRED: [0x604, "manifest has expired"],
  MANIFEST_NOT_YET: [0x605, "manifest is not valid yet (not-before in the future)"],
  MANIFEST_UNSIGNED: [0x606, "manifest carries no signature"],
  MANIFEST_REPLAY: [0x607, "metadata version is lower than one this device has accepted (replayed or rolled-back metadata)"],
  MANIFEST_CHANNEL: [0x608, "manifest is for another channel than the device's"],
  MANIFEST_CONFLICT: [0x609, "metadata version was accepted before with other content (an equivocating signer)"],

  // Update policy (0x700)
  POLICY_NOT_NEWER: [0x701, "release is not newer than the running version"],
  POLICY_DOWNGRADE: [0x702, "secure_version below the device's anti-rollback floor"],
  POLICY_HARDWARE: [0x703, "release does not target this hardware revision"],
  POLICY_GROUP: [0x704, "release does not target this device's group or region"],
  POLICY_ROLLOUT: [0x705, "device is outside the rollout percentage"],
  POLICY_WINDOW: [0x706, "outside the maintenance window"],
  POLICY_PRODUCT: [0x707, "release is for another product"],
  POLICY_BUSY: [0x708, "running image still awaits confirmation"],
  POLICY_REVOKED_VERSION: [0x709, "release version is revoked"],
  POLICY_RETRY_CAP: [0x70a, "too many failed attempts at this release"],
  POLICY_MIN_VERSION: [0x70b, "running version is below the release's minimum"],
  POLICY_ROLLED_BACK: [0x70c, "this release was rolled back on this device"],
  POLICY_ROLLBACK_BACKOFF: [0x70d, "release rolled back for a network cause: retried after a backoff"],
  POLICY_ROLLBACK_CAP: [0x70e, "release rolled back for network causes too many times"],

  // HTTP and download (0x800)
  HTTP_INSECURE_URL: [0x801, "only https: URLs are allowed"],
  HTTP_TLS: [0x802, "TLS handshake failed or certificate not trusted"],
  HTTP_CONNECT: [0x803, "cannot connect to the update host"],
  HTTP_STATUS: [0x804, "unexpected HTTP status"],
  HTTP_NOT_FOUND: [0x805, "update host answered 404"],
  HTTP_CLIENT_ERROR: [0x806, "update host refused the request (4xx)"],
  HTTP_SERVER_ERROR: [0x807, "update host failed (5xx)"],
  HTTP_TIMEOUT: [0x808, "no data for too long, or too slow"],
  HTTP_CLOSED: [0x809, "connection closed before the body was complete"],
  HTTP_RANGE: [0x80a, "server ignored or mangled the Range request"],
  HTTP_TOO_LONG: [0x80b, "server sent more bytes than announced"],
  HTTP_RANGE_NOT_SATISFIABLE: [0x80c, "server answered 416 to a Range request"],
  DOWNLOAD_SIZE: [0x80d, "downloaded size differs from the manifest's"],
  DOWNLOAD_HASH: [0x80e, "downloaded SHA-256 differs from the manifest's"],
  DOWNLOAD_ETAG_CHANGED: [0x80f, "image changed on the server during the download"],

  // HTTP on the wire: encodings, malformed responses, redirects (0x820, issue 15)
  HTTP_ENCODING: [0x820, "response has a Content-Encoding the device does not decode"],
  HTTP_PROTOCOL: [0x821, "malformed HTTP response (duplicated Content-Length, header too long, bad framing)"],
  HTTP_REDIRECT: [0x822, "too many redirects, or a redirect without a usable https: Location"],
  HTTP_REDIRECT_LOOP: [0x823, "redirects lead back to a URL already visited"],

  // Confirmation and rollback (0x900)
  CONFIRM_DIAGNOSTICS: [0x901, "self-diagnostics failed"],
  CONFIRM_TIMEOUT: [0x902, "self-diagnostics did not finish in time"],
  CONFIRM_NO_ROLLBACK: [0x903, "cannot roll back: the other slot does not hold a valid image"],
  ROLLBACK_BOOT: [0x904, "new image failed to boot and was rolled back"],
  REBOOT_DEADLINE: [0x905, "the application did not allow the restart before the deadline"],
  CONFIRM_NETWORK: [0x906, "the network did not come up within its deadline after the update"],
  CONFIRM_UNREACHABLE: [0x907, "update host or broker unreachable during the self-test"],

  // Store / NVS (0xA00)
  STORE_KEY: [0xa01, "NVS domain or key longer than 15 characters"],
  STORE_VALUE: [0xa02, "NVS value too large or of the wrong type"],
  STORE_FULL: [0xa03, "NVS is full"],
  JOURNAL_CORRUPT: [0xa04, "update journal is corrupt"],

  // MQTT and fleet (0xB00)
  MQTT_CONNECT: [0xb01, "cannot connect to the broker"],
  MQTT_PROTOCOL: [0xb02, "broker sent something unexpected"],
  MQTT_CLOSED: [0xb03, "broker connection closed"],
  OUTBOX_FULL: [0xb04, "audit outbox is full: oldest progress events dropped"],
  ANNOUNCE_INVALID: [0xb05, "release announcement is not signed or not valid"],
  CONTROL_CANCELLED: [0xb06, "the update was cancelled by a control command"],
  CONTROL_PAUSED: [0xb07, "the download is paused by a control command"],
  CONTROL_STATE: [0xb08, "no update in a state this control command applies to"],

  // Configuration and CLI (0xC00)
  CONFIG_INVALID: [0xc01, "configuration is invalid"],
  USAGE: [0xc02, "bad command-line usage"],
  FILE_NOT_FOUND: [0xc03, "file not found"],
  PORT_BUSY: [0xc04, "network port already in use"],
  DB_CONNECT: [0xc05, "cannot open the fleet's audit database"],
  COMPONENT_BUILD: [0xc06, "the component's TypeScript did not compile"],
  API_FORBIDDEN: [0xc07, "the controller's API refused the request (token, Origin or Host)"],
  INTERNAL: [0xcff, "internal error"],

  // Delta updates (0xD00): detools sequential patches applied from the running slot
  DELTA_FORMAT: [0xd01, "delta patch header or structure is invalid"],
  DELTA_COMPRESSION: [0xd02, "delta patch compression unsupported or its stream is corrupt"],
  DELTA_TRUNCATED: [0xd03, "delta patch ended before its output was complete"],
  DELTA_OVERRUN: [0xd04, "delta patch output larger than its header or the slot allows"],
  DELTA_BASE: [0xd05, "delta patch reads outside the base image"],

  // Pre-encrypted images (0xE00): ESP-IDF's esp_encrypted_img format (issue 31)
  ENC_MAGIC: [0xe01, "not an esp_encrypted_img file (magic 0x0788B6CF missing)"],
  ENC_KEY: [0xe02, "the device key does not open this encrypted image"],
  ENC_TAG: [0xe03, "encrypted image's AES-GCM tag does not verify"],
  ENC_TRUNCATED: [0xe04, "encrypted image is shorter than its header says"],
  ENC_OVERSIZED: [0xe05, "encrypted image is longer than its header says, or larger than allowed"],

  // Trust metadata: root of trust, roles and thresholds (0xF00, issue 29)
  ROLE_THRESHOLD: [0xf01, "fewer valid signatures by the role's keys than its threshold"],
  ROOT_INVALID: [0xf02, "root metadata is malformed or not signed by its own root threshold"],
  ROOT_VERSION: [0xf03, "root metadata is not the next version of the trusted root (skipped or older)"],
  ROOT_EXPIRED: [0xf04, "the trusted root metadata has expired"],
  ROLLOUT_RELEASE: [0xf05, "the rollout document does not reference this release (hash, product or channel differ)"],
} as const satisfies Record<string, readonly [number, string]>);

export type ErrorCode = keyof typeof ERROR_TABLE;

export function errorNumber(code: ErrorCode): number {
  return ERROR_TABLE[code][0];
}

/** esp_err_to_name, backwards: the code for a stored number, or "INTERNAL". */
export function errorCodeOf(num: number): ErrorCode {
  for (const code in ERROR_TABLE) {
    if (ERROR_TABLE[code as ErrorCode][0] === num) return code as ErrorCode;
  }
  return "INTERNAL";
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

export class OtaError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  constructor(code: ErrorCode, detail?: string) {
    const base = ERROR_TABLE[code][1];
    super(detail ? `${code}: ${base}: ${detail}` : `${code}: ${base}`);
    this.code = code;
    this.detail = detail ?? "";
  }
}
// On the prototype, not `this.name = ...`: xsl freezes the built-ins of any build with a preload
// (the devkit's preloads http, timer...), and assigning over frozen Error.prototype.name throws
// "set name: not writable", which turned every OtaError into an INTERNAL TypeError on the chip.
Object.defineProperty(OtaError.prototype, "name", { value: "OtaError", writable: true, configurable: true });

/** The code of anything thrown: an OtaError's own, else INTERNAL. */
export function codeOf(e: unknown): ErrorCode {
  return e instanceof OtaError ? e.code : "INTERNAL";
}
