/*
 * What to do about each error code, for people at a terminal (the CLI prints it under the error).
 * Host only: the device reports codes and numbers, so this text stays out of its link (it was a
 * third of errors.xsb). Record<ErrorCode, string>: a code without a hint fails to type-check.
 */
import type { ErrorCode } from "../modules/errors";

export const ERROR_HINTS: Record<ErrorCode, string> = {
  // Flash and partitions (0x100)
  FLASH_NO_PARTITION: "check partitions.csv",
  FLASH_OUT_OF_BOUNDS: "a bug: report it",
  FLASH_NOT_ERASED: "a bug: erase before writing",
  FLASH_MISALIGNED: "a bug: erase per 4 KB block",
  FLASH_POWER_CUT: "simulation only: the device reboots",
  FLASH_READBACK: "flash wear or hardware fault",

  // Partition table (0x200)
  PTABLE_SYNTAX: "fix the line named",
  PTABLE_OVERLAP: "fix offsets or sizes",
  PTABLE_ALIGN: "app partitions need 64 KB alignment, data 4 KB",
  PTABLE_DUPLICATE: "rename one",
  PTABLE_TYPE: "use app/data and ESP-IDF subtypes",
  PTABLE_TOO_LARGE: "use a larger flash or smaller partitions",
  PTABLE_BINARY: "rewrite the partition table",

  // otadata and boot selection (0x300)
  OTADATA_CORRUPT: "the bootloader falls back to ota_0",
  OTADATA_WRITE: "the previous boot selection stays in force",
  OTADATA_STATE: "see the state machine in DESIGN.md",
  BOOT_NO_IMAGE: "reflash over serial",

  // App image format (0x400)
  IMAGE_MAGIC: "upload the .bin that idf/mcconfig built",
  IMAGE_SEGMENTS: "image is corrupt or truncated",
  IMAGE_CHECKSUM: "image is corrupt",
  IMAGE_HASH: "image is corrupt",
  IMAGE_APP_DESC: "build with ESP-IDF's app description",
  IMAGE_CHIP: "build for this chip (ESP32 = chip id 0)",
  IMAGE_TRUNCATED: "upload the whole file",
  IMAGE_TOO_LARGE: "shrink the image or enlarge the slots",
  IMAGE_PROJECT: "publish the right product's image",
  IMAGE_VERSION: "rebuild the manifest from this image",
  IMAGE_SECURE_VERSION: "publish with the image's secure_version (CONFIG_BOOTLOADER_APP_SECURE_VERSION), or 0-version images with antiRollback \"manifest\"",

  // Signatures and keys (0x500)
  SIG_MISSING: "sign with xsota sign or espsecure.py sign_data",
  SIG_INVALID: "wrong key or tampered data",
  SIG_UNKNOWN_KEY: "add the key id to the trusted set",
  SIG_REVOKED_KEY: "re-sign with a current key",
  SIG_FORMAT: "re-sign the image",
  SIG_DIGEST: "image changed after signing",
  KEY_FORMAT: "use a PEM key from xsota keygen or espsecure.py",
  KEY_TYPE: "use ECDSA P-256 or RSA-2048",

  // Manifest (0x600)
  MANIFEST_SYNTAX: "regenerate it with xsota manifest",
  MANIFEST_FIELD: "regenerate it with xsota manifest",
  MANIFEST_TOO_LARGE: "keep manifests under 8 KB",
  MANIFEST_EXPIRED: "publish a fresh manifest",
  MANIFEST_REPLAY: "an older signed manifest was served again (a mirror or attacker replaying it): publish one with a higher metaVersion (the tools set it from the signing time)",
  MANIFEST_CHANNEL: "publish the release on the device's channel, or provision the device for that channel",
  MANIFEST_CONFLICT: "a manifest with the same metaVersion but other content was accepted before (a signer that equivocates, or two releases signed in the same millisecond): re-sign with a higher metaVersion",
  MANIFEST_NOT_YET: "wait, or check the device clock",
  MANIFEST_UNSIGNED: "sign it with xsota manifest --key",

  // Update policy (0x700)
  POLICY_NOT_NEWER: "nothing to do",
  POLICY_DOWNGRADE: "publish with a secure_version >= the floor",
  POLICY_HARDWARE: "nothing to do",
  POLICY_GROUP: "nothing to do",
  POLICY_ROLLOUT: "wait for the rollout to widen",
  POLICY_WINDOW: "wait for the window, or force a critical patch",
  POLICY_PRODUCT: "nothing to do",
  POLICY_BUSY: "retry after the self-test commits",
  POLICY_REVOKED_VERSION: "publish a fixed version",
  POLICY_RETRY_CAP: "publish a new release or force a retry",
  POLICY_MIN_VERSION: "update through an intermediate release",
  POLICY_ROLLED_BACK: "publish a fixed version",
  POLICY_ROLLBACK_BACKOFF: "retried after networkRetry's backoff; check the network",
  POLICY_ROLLBACK_CAP: "the network never worked with this release: check Wi-Fi/host/broker, publish again",

  // HTTP and download (0x800)
  HTTP_INSECURE_URL: "serve the update host over HTTPS",
  HTTP_TLS: "check the pinned CA and the server certificate",
  HTTP_CONNECT: "check the host, port and network",
  HTTP_STATUS: "see the status in the detail",
  HTTP_NOT_FOUND: "check the URL; not retried",
  HTTP_CLIENT_ERROR: "not retried",
  HTTP_SERVER_ERROR: "retried with backoff",
  HTTP_TIMEOUT: "retried with backoff",
  HTTP_CLOSED: "resumed with a Range request",
  HTTP_RANGE: "restarted from byte 0",
  HTTP_TOO_LONG: "check the update host",
  HTTP_RANGE_NOT_SATISFIABLE: "restarted from byte 0",
  DOWNLOAD_SIZE: "check the published image",
  DOWNLOAD_HASH: "image tampered or corrupted in transit",
  DOWNLOAD_ETAG_CHANGED: "restarted from byte 0",

  // HTTP on the wire: encodings, malformed responses, redirects (0x820, issue 15)
  HTTP_ENCODING: "serve the file as is (no gzip/br on manifests or images)",
  HTTP_PROTOCOL: "check the update host or proxy",
  HTTP_REDIRECT: "point the device at the final URL",
  HTTP_REDIRECT_LOOP: "fix the redirect rules of the host",

  // Confirmation and rollback (0x900)
  CONFIRM_DIAGNOSTICS: "the device rolls back to the previous image",
  CONFIRM_TIMEOUT: "the device rolls back",
  CONFIRM_NO_ROLLBACK: "the device keeps the running image",
  ROLLBACK_BOOT: "see the crash reason of the new image",
  REBOOT_DEADLINE: "restarted anyway; raise reboot.deadlineMs",
  CONFIRM_NETWORK: "rolled back, retried later; check Wi-Fi or raise diagnostics.networkDeadlineMs",
  CONFIRM_UNREACHABLE: "rolled back, retried later; check the update host and broker",

  // Store / NVS (0xA00)
  STORE_KEY: "a bug: shorten the key",
  STORE_VALUE: "a bug: values <= 4000 bytes, integers only",
  STORE_FULL: "erase unused keys",
  JOURNAL_CORRUPT: "the update restarts from the beginning",

  // MQTT and fleet (0xB00)
  MQTT_CONNECT: "retried with backoff",
  MQTT_PROTOCOL: "check the broker",
  MQTT_CLOSED: "reconnected with backoff",
  OUTBOX_FULL: "reconnect the broker",
  ANNOUNCE_INVALID: "ignored",
  CONTROL_CANCELLED: "the running image and otadata are untouched",
  CONTROL_PAUSED: "send resume",
  CONTROL_STATE: "see xsota fleet history",

  // Configuration and CLI (0xC00)
  CONFIG_INVALID: "see the detail",
  USAGE: "see --help",
  FILE_NOT_FOUND: "check the path",
  PORT_BUSY: "pick another --port",
  API_FORBIDDEN: "the controller's token is in its audit log (meta api-token): run the command with the same --db as the controller",
  COMPONENT_BUILD: "run npm run typecheck in the repo: the device side must type-check before it is compiled",
  DB_CONNECT: "check --db (a file path or postgres://user@host:port/db) and that the server runs",
  INTERNAL: "a bug: report it",

  // Delta updates (0xD00): detools sequential patches applied from the running slot
  DELTA_FORMAT: "publish a detools sequential patch (xsota delta create)",
  DELTA_COMPRESSION: "use heatshrink (window 8, lookahead 7) or none",
  DELTA_TRUNCATED: "resumed, or the full image is fetched",
  DELTA_OVERRUN: "make the patch for an image that fits the slot",
  DELTA_BASE: "the patch was made against another base",

  // Pre-encrypted images (0xE00): ESP-IDF's esp_encrypted_img format (issue 31)
  ENC_MAGIC: "publish the file xsota encrypt or esp_enc_img_gen.py wrote, not the plain .bin",
  ENC_KEY: "encrypt with the public half of this device's key (RSA-3072 or P-256), and pick the right scheme",
  ENC_TAG: "file altered in transit, or (ECIES) encrypted for another device key",
  ENC_TRUNCATED: "upload the whole file",
  ENC_OVERSIZED: "publish the file as written; an image must fit the slot",

  // Trust metadata (0xF00)
  ROLE_THRESHOLD: "sign with more of the role's keys (the root names them and the threshold), or the key was revoked by a newer root",
  ROOT_INVALID: "make the root with xsota's root tool: every role named, thresholds 1..keys, signed by its own root keys",
  ROOT_VERSION: "publish every root version in order: a device rotates only from version n to n + 1",
  ROOT_EXPIRED: "sign a new root (version + 1) with the root keys before the old one expires",
  ROLLOUT_RELEASE: "re-sign the rollout document for the release it ships (sha256 of the release payload)",
};

export function errorHint(code: ErrorCode): string {
  return ERROR_HINTS[code];
}
