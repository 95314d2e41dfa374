/*
 * Named error codes, in the spirit of esp_err_to_name: one table, grouped per subsystem,
 * each with a stable number (base per subsystem, like ESP_ERR_OTA_BASE + n) and a hint.
 * Bad arguments stay TypeError/RangeError, as in Moddable; OtaError is for conditions.
 *
 * Add new codes at the end of their group; never renumber (numbers are stored in NVS and
 * reported to the fleet).
 */

export const ERROR_TABLE = {
  // Flash and partitions (0x100)
  FLASH_NO_PARTITION: [0x101, "no partition with that label", "check partitions.csv"],
  FLASH_OUT_OF_BOUNDS: [0x102, "flash access outside the partition", "a bug: report it"],
  FLASH_NOT_ERASED: [0x103, "write to flash that was not erased", "a bug: erase before writing"],
  FLASH_MISALIGNED: [0x104, "flash erase not on a block boundary", "a bug: erase per 4 KB block"],
  FLASH_POWER_CUT: [0x105, "power was cut during a flash operation", "simulation only: the device reboots"],
  FLASH_READBACK: [0x106, "bytes read back from flash differ from those written", "flash wear or hardware fault"],

  // Partition table (0x200)
  PTABLE_SYNTAX: [0x201, "partition table CSV line cannot be parsed", "fix the line named"],
  PTABLE_OVERLAP: [0x202, "partitions overlap", "fix offsets or sizes"],
  PTABLE_ALIGN: [0x203, "partition offset or size misaligned", "app partitions need 64 KB alignment, data 4 KB"],
  PTABLE_DUPLICATE: [0x204, "duplicate partition name", "rename one"],
  PTABLE_TYPE: [0x205, "unknown partition type or subtype", "use app/data and ESP-IDF subtypes"],
  PTABLE_TOO_LARGE: [0x206, "partition table does not fit the flash", "use a larger flash or smaller partitions"],
  PTABLE_BINARY: [0x207, "binary partition table is corrupt", "rewrite the partition table"],

  // otadata and boot selection (0x300)
  OTADATA_CORRUPT: [0x301, "both otadata entries are invalid", "the bootloader falls back to ota_0"],
  OTADATA_WRITE: [0x302, "writing otadata failed", "the previous boot selection stays in force"],
  OTADATA_STATE: [0x303, "otadata is not in a state that allows this operation", "see the state machine in DESIGN.md"],
  BOOT_NO_IMAGE: [0x304, "no slot holds a bootable image: the device is bricked", "reflash over serial"],

  // App image format (0x400)
  IMAGE_MAGIC: [0x401, "not an ESP app image (magic 0xE9 missing)", "upload the .bin that idf/mcconfig built"],
  IMAGE_SEGMENTS: [0x402, "image segment table is invalid", "image is corrupt or truncated"],
  IMAGE_CHECKSUM: [0x403, "image XOR checksum mismatch", "image is corrupt"],
  IMAGE_HASH: [0x404, "image appended SHA-256 mismatch", "image is corrupt"],
  IMAGE_APP_DESC: [0x405, "esp_app_desc_t missing or invalid", "build with ESP-IDF's app description"],
  IMAGE_CHIP: [0x406, "image built for another chip", "build for this chip (ESP32 = chip id 0)"],
  IMAGE_TRUNCATED: [0x407, "image is shorter than its headers say", "upload the whole file"],
  IMAGE_TOO_LARGE: [0x408, "image does not fit the update slot", "shrink the image or enlarge the slots"],
  IMAGE_PROJECT: [0x409, "image is for another project", "publish the right product's image"],
  IMAGE_VERSION: [0x40a, "image version differs from the manifest's", "rebuild the manifest from this image"],

  // Signatures and keys (0x500)
  SIG_MISSING: [0x501, "no signature where one is required", "sign with xsota sign or espsecure.py sign_data"],
  SIG_INVALID: [0x502, "signature does not verify", "wrong key or tampered data"],
  SIG_UNKNOWN_KEY: [0x503, "signed with a key the device does not trust", "add the key id to the trusted set"],
  SIG_REVOKED_KEY: [0x504, "signed with a revoked key", "re-sign with a current key"],
  SIG_FORMAT: [0x505, "signature block is malformed", "re-sign the image"],
  SIG_DIGEST: [0x506, "signature block digest does not match the image", "image changed after signing"],
  KEY_FORMAT: [0x507, "key file cannot be parsed", "use a PEM key from xsota keygen or espsecure.py"],
  KEY_TYPE: [0x508, "key type not supported", "use ECDSA P-256 or RSA-2048"],

  // Manifest (0x600)
  MANIFEST_SYNTAX: [0x601, "manifest is not valid JSON", "regenerate it with xsota manifest"],
  MANIFEST_FIELD: [0x602, "manifest field missing or of the wrong type", "regenerate it with xsota manifest"],
  MANIFEST_TOO_LARGE: [0x603, "manifest larger than the device accepts", "keep manifests under 8 KB"],
  MANIFEST_EXPIRED: [0x604, "manifest has expired", "publish a fresh manifest"],
  MANIFEST_NOT_YET: [0x605, "manifest is not valid yet (not-before in the future)", "wait, or check the device clock"],
  MANIFEST_UNSIGNED: [0x606, "manifest carries no signature", "sign it with xsota manifest --key"],

  // Update policy (0x700)
  POLICY_NOT_NEWER: [0x701, "release is not newer than the running version", "nothing to do"],
  POLICY_DOWNGRADE: [0x702, "secure_version below the device's anti-rollback floor", "publish with a secure_version >= the floor"],
  POLICY_HARDWARE: [0x703, "release does not target this hardware revision", "nothing to do"],
  POLICY_GROUP: [0x704, "release does not target this device's group or region", "nothing to do"],
  POLICY_ROLLOUT: [0x705, "device is outside the rollout percentage", "wait for the rollout to widen"],
  POLICY_WINDOW: [0x706, "outside the maintenance window", "wait for the window, or force a critical patch"],
  POLICY_PRODUCT: [0x707, "release is for another product", "nothing to do"],
  POLICY_BUSY: [0x708, "running image still awaits confirmation", "retry after the self-test commits"],
  POLICY_REVOKED_VERSION: [0x709, "release version is revoked", "publish a fixed version"],
  POLICY_RETRY_CAP: [0x70a, "too many failed attempts at this release", "publish a new release or force a retry"],
  POLICY_MIN_VERSION: [0x70b, "running version is below the release's minimum", "update through an intermediate release"],
  POLICY_ROLLED_BACK: [0x70c, "this release was rolled back on this device", "publish a fixed version"],

  // HTTP and download (0x800)
  HTTP_INSECURE_URL: [0x801, "only https: URLs are allowed", "serve the update host over HTTPS"],
  HTTP_TLS: [0x802, "TLS handshake failed or certificate not trusted", "check the pinned CA and the server certificate"],
  HTTP_CONNECT: [0x803, "cannot connect to the update host", "check the host, port and network"],
  HTTP_STATUS: [0x804, "unexpected HTTP status", "see the status in the detail"],
  HTTP_NOT_FOUND: [0x805, "update host answered 404", "check the URL; not retried"],
  HTTP_CLIENT_ERROR: [0x806, "update host refused the request (4xx)", "not retried"],
  HTTP_SERVER_ERROR: [0x807, "update host failed (5xx)", "retried with backoff"],
  HTTP_TIMEOUT: [0x808, "no data for too long, or too slow", "retried with backoff"],
  HTTP_CLOSED: [0x809, "connection closed before the body was complete", "resumed with a Range request"],
  HTTP_RANGE: [0x80a, "server ignored or mangled the Range request", "restarted from byte 0"],
  HTTP_TOO_LONG: [0x80b, "server sent more bytes than announced", "check the update host"],
  HTTP_RANGE_NOT_SATISFIABLE: [0x80c, "server answered 416 to a Range request", "restarted from byte 0"],
  DOWNLOAD_SIZE: [0x80d, "downloaded size differs from the manifest's", "check the published image"],
  DOWNLOAD_HASH: [0x80e, "downloaded SHA-256 differs from the manifest's", "image tampered or corrupted in transit"],
  DOWNLOAD_ETAG_CHANGED: [0x80f, "image changed on the server during the download", "restarted from byte 0"],

  // HTTP on the wire: encodings, malformed responses, redirects (0x820, issue 15)
  HTTP_ENCODING: [0x820, "response has a Content-Encoding the device does not decode", "serve the file as is (no gzip/br on manifests or images)"],
  HTTP_PROTOCOL: [0x821, "malformed HTTP response (duplicated Content-Length, header too long, bad framing)", "check the update host or proxy"],
  HTTP_REDIRECT: [0x822, "too many redirects, or a redirect without a usable https: Location", "point the device at the final URL"],
  HTTP_REDIRECT_LOOP: [0x823, "redirects lead back to a URL already visited", "fix the redirect rules of the host"],

  // Confirmation and rollback (0x900)
  CONFIRM_DIAGNOSTICS: [0x901, "self-diagnostics failed", "the device rolls back to the previous image"],
  CONFIRM_TIMEOUT: [0x902, "self-diagnostics did not finish in time", "the device rolls back"],
  CONFIRM_NO_ROLLBACK: [0x903, "cannot roll back: the other slot does not hold a valid image", "the device keeps the running image"],
  ROLLBACK_BOOT: [0x904, "new image failed to boot and was rolled back", "see the crash reason of the new image"],
  REBOOT_DEADLINE: [0x905, "the application did not allow the restart before the deadline", "restarted anyway; raise reboot.deadlineMs"],

  // Store / NVS (0xA00)
  STORE_KEY: [0xa01, "NVS domain or key longer than 15 characters", "a bug: shorten the key"],
  STORE_VALUE: [0xa02, "NVS value too large or of the wrong type", "a bug: values <= 4000 bytes, integers only"],
  STORE_FULL: [0xa03, "NVS is full", "erase unused keys"],
  JOURNAL_CORRUPT: [0xa04, "update journal is corrupt", "the update restarts from the beginning"],

  // MQTT and fleet (0xB00)
  MQTT_CONNECT: [0xb01, "cannot connect to the broker", "retried with backoff"],
  MQTT_PROTOCOL: [0xb02, "broker sent something unexpected", "check the broker"],
  MQTT_CLOSED: [0xb03, "broker connection closed", "reconnected with backoff"],
  OUTBOX_FULL: [0xb04, "audit outbox is full: oldest progress events dropped", "reconnect the broker"],
  ANNOUNCE_INVALID: [0xb05, "release announcement is not signed or not valid", "ignored"],
  CONTROL_CANCELLED: [0xb06, "the update was cancelled by a control command", "the running image and otadata are untouched"],
  CONTROL_PAUSED: [0xb07, "the download is paused by a control command", "send resume"],
  CONTROL_STATE: [0xb08, "no update in a state this control command applies to", "see xsota fleet history"],

  // Configuration and CLI (0xC00)
  CONFIG_INVALID: [0xc01, "configuration is invalid", "see the detail"],
  USAGE: [0xc02, "bad command-line usage", "see --help"],
  FILE_NOT_FOUND: [0xc03, "file not found", "check the path"],
  PORT_BUSY: [0xc04, "network port already in use", "pick another --port"],
  DB_CONNECT: [0xc05, "cannot open the fleet's audit database", "check --db (a file path or postgres://user@host:port/db) and that the server runs"],
  INTERNAL: [0xcff, "internal error", "a bug: report it"],

  // Delta updates (0xD00): detools sequential patches applied from the running slot
  DELTA_FORMAT: [0xd01, "delta patch header or structure is invalid", "publish a detools sequential patch (xsota delta create)"],
  DELTA_COMPRESSION: [0xd02, "delta patch compression unsupported or its stream is corrupt", "use heatshrink (window 8, lookahead 7) or none"],
  DELTA_TRUNCATED: [0xd03, "delta patch ended before its output was complete", "resumed, or the full image is fetched"],
  DELTA_OVERRUN: [0xd04, "delta patch output larger than its header or the slot allows", "make the patch for an image that fits the slot"],
  DELTA_BASE: [0xd05, "delta patch reads outside the base image", "the patch was made against another base"],
} as const satisfies Record<string, readonly [number, string, string]>;

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

export function errorHint(code: ErrorCode): string {
  return ERROR_TABLE[code][2];
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
