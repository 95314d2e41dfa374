/*
 * The ports: the only doors out of modules/.
 *
 * Each interface has one binding in src/ (Moddable on the ESP32) and one in host-sim/
 * (the simulated ESP32, under Node or bridged into the XS engine). Shapes follow the
 * Moddable / ECMA-419 APIs they wrap, so the device binding stays thin.
 *
 * Rules for everything in modules/: no Node API or Node global, no DOM; bytes are
 * Uint8Array/ArrayBuffer; time comes only from ClockPort.
 */

/** One flash partition, opened by label. NOR semantics: erase a 4 KB block to 0xFF, writes only clear bits. */
export interface FlashPartition {
  /** Partition size in bytes. */
  readonly byteLength: number;
  /** Erase block size in bytes (4096 on ESP32). */
  readonly blockSize: number;
  /** Copy `target.byteLength` bytes from `offset` into the caller-owned `target`. */
  read(offset: number, target: Uint8Array): void;
  /** Program `data` at `offset`. The block must have been erased; out of bounds throws. */
  write(offset: number, data: Uint8Array): void;
  /** Erase one block (index, not byte offset) to 0xFF. */
  eraseBlock(block: number): void;
}

/** What the agent needs to know about the app slots; the bootloader's truth, not otadata's guess. */
export interface SlotInfo {
  /** Number of OTA app slots (ota_0..ota_{n-1}). */
  readonly count: number;
  /** Index of the slot the bootloader actually booted (esp_ota_get_running_partition). */
  readonly running: number;
  /** Index of the slot an update is written to (esp_ota_get_next_update_partition). */
  readonly next: number;
}

export interface FlashPort {
  /**
   * Open a partition by label: "running", "nextota" (app slots), "otadata", "nvs", or any
   * data partition label. Throws OtaError FLASH_NO_PARTITION for an unknown label.
   */
  open(label: string): FlashPartition;
  slots(): SlotInfo;
}

/** Preference / NVS. Domain and key <= 15 chars, value <= 4000 bytes, integers not floats. */
export type StoreValue = string | number | boolean | ArrayBuffer;
export interface StorePort {
  get(domain: string, key: string): StoreValue | undefined;
  /** Each set commits (atomic per key, like an NVS commit). */
  set(domain: string, key: string, value: StoreValue): void;
  delete(domain: string, key: string): void;
  keys(domain: string): string[];
}

/** Streaming HTTPS GET. Only https: URLs; TLS trusts only the pinned CA/server certificate. */
export interface HttpRequestOptions {
  url: string;
  method?: "GET" | "HEAD";
  /** Request headers as [name, value] pairs, e.g. [["range", "bytes=4096-"], ["if-range", "\"etag\""]]. */
  headers?: ReadonlyArray<readonly [string, string]>;
  /**
   * The trust anchors for this request (PEM, one or more CA certificates), in place of the pinned
   * CA, on every engine: a redirect target's CA named by the configuration (modules/redirect.ts),
   * or the current root's anchors in roles mode (modules/roles.ts, CA rollover).
   */
  ca?: string;
}

export interface HttpHandler {
  /** Status line received. */
  onStatus(status: number): void;
  /** One header, name lower-cased (Moddable message 2). */
  onHeader(name: string, value: string): void;
  /** All headers received (Moddable message 3). */
  onHeadersComplete(): void;
  /**
   * Body bytes are available (Moddable message 4): call `read(target)` to copy up to
   * target.byteLength of them into the caller-owned buffer; it returns the count copied.
   * Whatever is not read now is offered again with the next call.
   */
  onData(available: number, read: (target: Uint8Array) => number): void;
  /** Body complete (Moddable message 5). */
  onComplete(): void;
  /** Transport or TLS failure (Moddable message -2); `code` is an OtaError code. */
  onError(code: string, detail: string): void;
}

export interface HttpRequest {
  /** Abort; safe to call twice and after completion. */
  close(): void;
  /**
   * Offer the body bytes left unread again now (onData), e.g. when a bandwidth cap allows more.
   * Optional: without it they are offered with the next arrival.
   */
  pull?(): void;
}

export interface HttpPort {
  request(options: HttpRequestOptions, handler: HttpHandler): HttpRequest;
}

export interface Sha256 {
  write(data: Uint8Array): void;
  /** Returns the 32-byte digest and leaves the object reset. */
  close(): Uint8Array;
  /**
   * The 32-byte digest of the bytes written so far; the hash goes on (more writes, then close).
   * Moddable: `Digest.close(true)` (modCrypt.c saves the context before finishing and restores
   * it after). One pass over a slot then yields the digest of each prefix it needs.
   */
  digest(): Uint8Array;
  reset(): void;
}

/** AES-256-GCM decryption in progress (no AAD; a 16-byte IV), for pre-encrypted images (modules/enc-stream.ts). */
export interface GcmDecrypt {
  /** Plain bytes for the next ciphertext bytes, any length (the binding keeps partial blocks). */
  update(ciphertext: Uint8Array): Uint8Array;
  /** Feed the plain bytes written before a reboot, as if their ciphertext had been received. */
  replay(plaintext: Uint8Array): void;
  /** Whether the tag matches, after the last byte. */
  finish(tag: Uint8Array): boolean;
}

/** An RSA private key, big-endian unsigned parts (PKCS#1 RSAPrivateKey). */
export interface RsaPrivateKey {
  n: Uint8Array;
  e: Uint8Array;
  d: Uint8Array;
  p: Uint8Array;
  q: Uint8Array;
  dp: Uint8Array;
  dq: Uint8Array;
  qi: Uint8Array;
}

/**
 * What decrypting an esp_encrypted_img file needs beyond SHA-256 (issue 31). Optional: a binding
 * without it refuses encrypted releases (ENC_KEY). Moddable: etc/rsa.js, etc/curve.js, AES CTR +
 * GHASH (README "Pre-encrypted images").
 */
export interface EncCipherPort {
  /** The raw RSA private operation (no padding): block^d mod n, as many bytes as n. */
  rsaPrivateRaw(key: RsaPrivateKey, block: Uint8Array): Uint8Array;
  /** The X coordinate (32 bytes) of d * (X||Y) on P-256; the caller has checked the point is on the curve. */
  ecdhP256(d: Uint8Array, xy: Uint8Array): Uint8Array;
  aesGcmDecrypt(key: Uint8Array, iv: Uint8Array): GcmDecrypt;
}

export interface CryptoPort {
  /** Pre-encrypted images: absent where the binding has no ciphers. */
  enc?: EncCipherPort;
  sha256(): Sha256;
  /**
   * ECDSA P-256 over a precomputed SHA-256 digest. `publicKey` is an uncompressed point
   * (65 bytes, 0x04||X||Y); `signature` is raw r||s (64 bytes) or DER.
   */
  verifyEcdsaP256(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
  /**
   * RSA PKCS#1 v1.5 with SHA-256 over a precomputed digest. `modulus` big-endian,
   * `exponent` big-endian (usually 0x010001). Moddable's crypt has no PSS.
   */
  verifyRsaPkcs1Sha256(modulus: Uint8Array, exponent: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
}

export interface MqttWill {
  topic: string;
  payload: string;
  qos?: 0 | 1;
  retain?: boolean;
}

export interface MqttConnectOptions {
  host: string;
  port: number;
  id: string;
  user?: string;
  password?: string;
  will?: MqttWill;
  /** Keep-alive in ms. */
  keepalive?: number;
  secure?: boolean;
  /**
   * For a `secure` connection: the trust anchors (PEM, one or more CA certificates) in place of the
   * port's pinned broker CA (the current root's anchors in roles mode, modules/roles.ts).
   */
  ca?: string;
  /**
   * A packet from the broker whose remaining length is over this ends the connection
   * ("MQTT_PROTOCOL: packet of N bytes ...") before anything is allocated for it. Default: no bound.
   */
  maxPacketBytes?: number;
}

export interface MqttHandler {
  onReady(): void;
  onMessage(topic: string, payload: Uint8Array): void;
  /** The connection is gone (error or close); the client is dead after this. */
  onClose(reason: string): void;
  /** PUBACK for a QoS 1 publish (by the id `publish` returned). Optional on the device. */
  onPublished?(id: number): void;
}

export interface MqttClient {
  /** Returns the packet id for QoS 1, 0 for QoS 0. */
  publish(topic: string, payload: string | Uint8Array, options?: { qos?: 0 | 1; retain?: boolean }): number;
  subscribe(topic: string): void;
  close(): void;
}

export interface MqttPort {
  connect(options: MqttConnectOptions, handler: MqttHandler): MqttClient;
}

export type TimerId = number;
export interface ClockPort {
  /** Monotonic milliseconds since boot. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for expiry and windows); may be unset (0) before SNTP. */
  wallTime(): number;
  setTimeout(callback: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

export type ResetReason = "power-on" | "software" | "panic" | "watchdog" | "brownout" | "unknown";

export interface SystemPort {
  /** Restart the chip. Never returns on the device; in the simulator it ends this boot. */
  restart(reason: string): void;
  resetReason(): ResetReason;
  /** Stable device id (MAC, lower-case hex without separators). */
  deviceId(): string;
  /** Hardware revision string, e.g. "esp32-rev3". */
  hardwareRevision(): string;
  /** Chip id as in esp_image_header_t (ESP32 = 0). */
  chipId(): number;
  /** Free heap in bytes. */
  freeHeap(): number;
  /** Log a line (trace on the device, the simulator's console or capture in tests). */
  log(line: string): void;
}

/**
 * The boot-control steps, as ESP-IDF's esp_ota_ops.h names them. Two bindings: modules/bootctl.ts's
 * FlashBootControl, the TypeScript model of v6.0's otadata over FlashPort (held equal to IDF's own C
 * by test/device/idf-otadata-diff.test.ts), used when `Ports.boot` is absent (the simulator, Moddable's
 * Linux runtime); and src/boot.ts on the ESP32, which calls ESP-IDF's own functions through the native,
 * so the device never depends on our reading of the otadata format. Errors are OtaError codes (the
 * esp_err_t map is src/boot.ts's); bad arguments stay RangeError.
 */
export interface BootControlPort {
  /**
   * esp_ota_get_state_partition(esp_ota_get_running_partition()): the running slot's otadata state
   * (modules/otadata.ts OtaState), undefined when no entry selects it (ESP_ERR_NOT_FOUND) or it is no
   * OTA slot (ESP_ERR_NOT_SUPPORTED).
   */
  runningState(): number | undefined;
  /**
   * esp_ota_set_boot_partition(ota_<slot>): the next boot runs `slot` (state NEW). Throws RangeError
   * (no such slot), OTADATA_WRITE, IMAGE_HASH (ESP-IDF's validation of the slot failed),
   * POLICY_DOWNGRADE (its secure_version is below the eFuse), FLASH_NO_PARTITION (no otadata).
   */
  setBootSlot(slot: number): void;
  /**
   * esp_ota_check_rollback_is_possible: whether marking the running image INVALID brings another
   * bootable image back.
   */
  rollbackPossible(): boolean;
  /**
   * esp_ota_mark_app_valid_cancel_rollback. Throws OTADATA_STATE (no active entry: the running app is
   * the factory one; the TypeScript binding also when the active entry is not the running slot's), OTADATA_WRITE.
   */
  markValid(): void;
  /**
   * esp_ota_mark_app_invalid_rollback, without the restart (the agent journals, then restarts).
   * Throws CONFIRM_NO_ROLLBACK (ESP_ERR_OTA_ROLLBACK_FAILED: nothing else to boot; nothing written),
   * OTADATA_STATE, OTADATA_WRITE.
   */
  markInvalid(): void;
}

/** Everything the agent gets from its host, bundled. */
export interface Ports {
  /** ESP-IDF's boot control (src/boot.ts on the ESP32); absent: modules/bootctl.ts over `flash`. */
  boot?: BootControlPort;
  flash: FlashPort;
  store: StorePort;
  http: HttpPort;
  crypto: CryptoPort;
  mqtt?: MqttPort;
  clock: ClockPort;
  system: SystemPort;
}
