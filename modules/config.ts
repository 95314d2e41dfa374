/*
 * The application configuration (JSON): where releases come from, which keys are trusted,
 * how the device targets itself, and the agent's limits. `parseConfig` validates it and fills
 * defaults, so the rest of the agent reads plain numbers.
 *
 * The running version, project and secure_version are NOT configuration: they come from the
 * running image's esp_app_desc_t (flash label "running"), so they cannot drift from the bytes.
 */
import { OtaError } from "./errors";
import { REDIRECT_DEFAULTS, type RedirectConfig } from "./redirect";
import { constant } from "./constant";
import type { MqttConnectOptions } from "./ports";

/** A trusted public key as configured: SIGN's keyFromConfig input (modules/keys.ts). */
export interface KeyConfig {
  id?: string;
  type: "ecdsa-p256" | "rsa-2048";
  /** base64 DER SubjectPublicKeyInfo */
  spki: string;
  revoked?: boolean;
}

export interface RetryConfig {
  /** First backoff delay (ms). */
  baseMs: number;
  /** Backoff ceiling (ms). */
  maxMs: number;
  /** Failed download attempts per release before POLICY_RETRY_CAP (persisted across reboots). */
  maxAttempts: number;
}

export interface DiagnosticsConfig {
  /** The whole self-test window after an update (ms of device time). */
  windowMs: number;
  /** Free heap below this fails the built-in heap check (bytes). */
  heapFloor: number;
  /** Per-check timeout (ms). */
  checkTimeoutMs: number;
  /**
   * true: the network is up only when the app says so (App.networkUp(): its own Wi-Fi, Ethernet,
   * provisioning); false (default): up when main runs, after Moddable's setup/network.
   */
  waitForNetwork: boolean;
  /** Longest wait for the network after boot (ms of uptime) before the self-test fails with CONFIRM_NETWORK. */
  networkDeadlineMs: number;
  /** false: the built-in checks (heap, network, update host, broker) are left out; the application's replace them. */
  builtin: boolean;
}

export interface DownloadConfig {
  /** No body bytes for this long aborts the attempt (HTTP_TIMEOUT) and resumes (ms). */
  stallMs: number;
  /** Average below this many bytes/s over `rateWindowMs` aborts the attempt (HTTP_TIMEOUT). */
  minBytesPerSec: number;
  rateWindowMs: number;
  /** Journal the byte count every this many bytes (bounded NVS writes); a multiple of 4096. */
  journalEveryBytes: number;
  /** Bandwidth cap in bytes/s (0 = none); a manifest's maxBytesPerSec can only lower it. */
  maxBytesPerSec: number;
}

export interface RebootConfig {
  /** Longest wait for the application's rebootWhen before restarting anyway (REBOOT_DEADLINE), ms. */
  deadlineMs: number;
  /** How often rebootWhen is asked (ms). */
  pollMs: number;
}

export interface MaintenanceWindow {
  /** Minutes after 00:00 UTC; a window may wrap past midnight (start > end). */
  startMinute: number;
  endMinute: number;
}

export interface MqttConfig {
  host: string;
  port: number;
  secure?: boolean;
  keepaliveMs?: number;
  /** CONNECT user name (usually provisioned per device in NVS, modules/provision.ts). */
  username?: string;
  /** CONNECT password; MQTT 3.1.1 allows it only with a user name. */
  password?: string;
  /** CONNECT client id (default: the device id). */
  clientId?: string;
}

/** Longest MQTT client id taken (3.1.1 promises 23; brokers such as mosquitto and aedes take more). */
export const MAX_CLIENT_ID = 64;

/**
 * The MqttPort connect options for `mqtt` (host, port, TLS, keep-alive, credentials), client id
 * `mqtt.clientId` or else `deviceId` followed by `suffix` (e.g. "-diag" for a second connection).
 */
export function brokerOptions(mqtt: MqttConfig, deviceId: string, suffix = ""): MqttConnectOptions {
  const o: MqttConnectOptions = { host: mqtt.host, port: mqtt.port, id: (mqtt.clientId ?? deviceId) + suffix, keepalive: mqtt.keepaliveMs ?? 60_000, secure: mqtt.secure ?? false };
  if (mqtt.username !== undefined) o.user = mqtt.username;
  if (mqtt.password !== undefined) o.password = mqtt.password;
  return o;
}

export type AntiRollback = "manifest" | "efuse";

export interface AppConfig {
  product: string;
  channel: string;
  /** https: URL of the signed manifest envelope. */
  manifestUrl: string;
  trustedKeys: KeyConfig[];
  /**
   * Roles mode (modules/roles.ts, issue 29): base64 of the signed root envelope the firmware ships.
   * With it, the manifest URL serves a rollout document + release (both role thresholds), control
   * commands are verified with the root's commands keys, and trustedKeys sign images only.
   */
  root?: string;
  /** Keys for the image's appended espsecure signature (default: trustedKeys). */
  imageKeys?: KeyConfig[];
  requireImageSignature: boolean;
  revokedVersions?: string[];
  hardware?: string;
  region?: string;
  groups?: string[];
  /** Period of the update check loop (ms); 0 disables the loop (checks only on command). */
  checkIntervalMs: number;
  retry: RetryConfig;
  diagnostics: DiagnosticsConfig;
  download: DownloadConfig;
  /** Redirects followed for the manifest and the image (modules/redirect.ts). */
  redirects: RedirectConfig;
  reboot: RebootConfig;
  maintenanceWindow?: MaintenanceWindow;
  mqtt?: MqttConfig;
  /** Outbox capacity in events. */
  outboxCapacity: number;
  /**
   * Who holds the anti-rollback floor (modules/policy.ts POLICY_DOWNGRADE; docs/esp32.md "Anti-rollback"):
   * - "manifest" (default; CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK off): ESP-IDF writes secure_version 0
   *   into every image, so the floor is the signed manifest's secureVersion of the last release this
   *   device committed, kept in NVS; an image's own secure_version must be 0 or the manifest's.
   * - "efuse" (the bootloader built with CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK, sdkconfig/anti-rollback.defaults):
   *   the image's esp_app_desc_t secure_version must equal the manifest's (IMAGE_SECURE_VERSION);
   *   the chip's eFuse floor rises to it after commit, and the NVS floor follows it.
   */
  antiRollback: AntiRollback;
  /** false: never take a release's delta, always its full image (default: take a delta whose base is the running image). */
  deltas?: boolean;
  /**
   * A release rolled back for a network cause (CONFIRM_NETWORK, CONFIRM_UNREACHABLE) is tried
   * again after backoffDelay(n, networkRetry); maxAttempts such rollbacks refuse it (POLICY_ROLLBACK_CAP).
   */
  networkRetry: RetryConfig;
  /**
   * The device's esp_encrypted_img key (modules/enc-key.ts), best provisioned in NVS ("xsota.dev"
   * enckey / enchmac, modules/provision.ts) rather than in the build's defaults: a PEM private key
   * (RSA-3072, or P-256 for ECIES), or the ECIES eFuse HMAC key as 64 hex digits. Without either,
   * an encrypted release is refused (ENC_KEY).
   */
  decryptionKey?: string;
  decryptionHmacKey?: string;
}

export const DEFAULTS = constant({
  channel: "stable",
  checkIntervalMs: 3600_000,
  retry: { baseMs: 2_000, maxMs: 600_000, maxAttempts: 8 },
  diagnostics: { windowMs: 30_000, heapFloor: 16 * 1024, checkTimeoutMs: 10_000 },
  download: { stallMs: 30_000, minBytesPerSec: 256, rateWindowMs: 60_000, journalEveryBytes: 64 * 1024, maxBytesPerSec: 0 },
  reboot: { deadlineMs: 600_000, pollMs: 1000 },
  // Events are ~150-350 bytes of JSON in NVS (20 KB on the seed's table, one sector kept free for compaction).
  outboxCapacity: 32,
  networkDeadlineMs: 120_000,
  networkRetry: { baseMs: 300_000, maxMs: 6 * 3600_000, maxAttempts: 3 },
} as const);

type Json = Record<string, unknown>;

function antiRollbackOf(v: unknown): AntiRollback {
  if (v === undefined) return "manifest";
  if (v !== "manifest" && v !== "efuse") fail("antiRollback", 'expected "manifest" or "efuse"');
  return v;
}

/**
 * The mode on a chip, where the build decides: `built` is CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK of the
 * sdkconfig the app and its bootloader were built with (src/native: antiRollback()). Unset: the
 * build's. Set: must be the build's, else CONFIG_INVALID (an agent in "efuse" mode over a bootloader
 * without it would only ever see secure_version 0, and its floor would never rise).
 */
export function antiRollbackOfBuild(configured: unknown, built: boolean): AntiRollback {
  const mode: AntiRollback = built ? "efuse" : "manifest";
  if (configured === undefined) return mode;
  if (antiRollbackOf(configured) !== mode) fail("antiRollback", `"${String(configured)}", but this build has CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK ${built ? "on" : "off"}: "${mode}"`);
  return mode;
}

function fail(path: string, what: string): never {
  throw new OtaError("CONFIG_INVALID", `${path}: ${what}`);
}

function obj(v: unknown, path: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "expected an object");
  return v as Json;
}

function str(v: unknown, path: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || v === "") fail(path, "expected a non-empty string");
  return v;
}

function optStr(v: unknown, path: string): string | undefined {
  return v === undefined ? undefined : str(v, path);
}

function num(v: unknown, path: string, fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || Math.floor(v) !== v) fail(path, "expected an integer");
  if (v < min || v > max) fail(path, `expected ${min}..${max}`);
  return v;
}

function bool(v: unknown, path: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") fail(path, "expected true or false");
  return v;
}

function strList(v: unknown, path: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) fail(path, "expected an array of strings");
  return v.map((s, i) => str(s, `${path}[${i}]`));
}

function keys(v: unknown, path: string): KeyConfig[] {
  if (!Array.isArray(v)) fail(path, "expected an array of keys");
  return v.map((k, i) => {
    const o = obj(k, `${path}[${i}]`);
    const type = o.type;
    if (type !== "ecdsa-p256" && type !== "rsa-2048") fail(`${path}[${i}].type`, "expected ecdsa-p256 or rsa-2048");
    const spki = str(o.spki, `${path}[${i}].spki`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(spki)) fail(`${path}[${i}].spki`, "expected base64 DER");
    const key: KeyConfig = { type, spki };
    const id = optStr(o.id, `${path}[${i}].id`);
    if (id !== undefined) key.id = id;
    if (o.revoked !== undefined) key.revoked = bool(o.revoked, `${path}[${i}].revoked`, false);
    return key;
  });
}

function retryOf(v: unknown, path: string, fallback: RetryConfig): RetryConfig {
  const r = v === undefined ? {} : obj(v, path);
  const retry = {
    baseMs: num(r.baseMs, `${path}.baseMs`, fallback.baseMs, 1),
    maxMs: num(r.maxMs, `${path}.maxMs`, fallback.maxMs, 1),
    maxAttempts: num(r.maxAttempts, `${path}.maxAttempts`, fallback.maxAttempts, 1, 1000),
  };
  if (retry.maxMs < retry.baseMs) fail(`${path}.maxMs`, `must be >= ${path}.baseMs`);
  return retry;
}

function redirectsOf(v: unknown): RedirectConfig {
  if (v === undefined) return { max: REDIRECT_DEFAULTS.max, hostCas: {} };
  const r = obj(v, "redirects");
  const hostCas: Record<string, string> = {};
  if (r.hostCas !== undefined) {
    const m = obj(r.hostCas, "redirects.hostCas");
    for (const host in m) {
      const pem = str(m[host], `redirects.hostCas.${host}`);
      if (!/-----BEGIN CERTIFICATE-----/.test(pem)) fail(`redirects.hostCas.${host}`, "expected a PEM certificate");
      hostCas[host.toLowerCase()] = pem;
    }
  }
  return { max: num(r.max, "redirects.max", REDIRECT_DEFAULTS.max, 0, 20), hostCas };
}

/**
 * Validate a configuration (JSON text or parsed data) and fill defaults.
 * Throws CONFIG_INVALID naming the first bad field.
 */
export function parseConfig(json: unknown): AppConfig {
  let data = json;
  if (typeof json === "string") {
    try {
      data = JSON.parse(json);
    } catch (e) {
      fail("config", `not JSON (${(e as Error).message})`);
    }
  }
  const o = obj(data, "config");
  const manifestUrl = str(o.manifestUrl, "manifestUrl");
  if (!/^https?:\/\//i.test(manifestUrl)) fail("manifestUrl", "expected an https: URL");
  const trustedKeys = keys(o.trustedKeys, "trustedKeys");
  if (trustedKeys.length === 0) fail("trustedKeys", "at least one key is required");
  const r = o.retry === undefined ? {} : obj(o.retry, "retry");
  const d = o.diagnostics === undefined ? {} : obj(o.diagnostics, "diagnostics");
  const dl = o.download === undefined ? {} : obj(o.download, "download");
  const rb = o.reboot === undefined ? {} : obj(o.reboot, "reboot");
  const config: AppConfig = {
    product: str(o.product, "product"),
    channel: str(o.channel, "channel", DEFAULTS.channel),
    manifestUrl,
    trustedKeys,
    requireImageSignature: bool(o.requireImageSignature, "requireImageSignature", false),
    checkIntervalMs: num(o.checkIntervalMs, "checkIntervalMs", DEFAULTS.checkIntervalMs),
    retry: {
      baseMs: num(r.baseMs, "retry.baseMs", DEFAULTS.retry.baseMs, 1),
      maxMs: num(r.maxMs, "retry.maxMs", DEFAULTS.retry.maxMs, 1),
      maxAttempts: num(r.maxAttempts, "retry.maxAttempts", DEFAULTS.retry.maxAttempts, 1, 1000),
    },
    diagnostics: {
      windowMs: num(d.windowMs, "diagnostics.windowMs", DEFAULTS.diagnostics.windowMs, 1),
      heapFloor: num(d.heapFloor, "diagnostics.heapFloor", DEFAULTS.diagnostics.heapFloor),
      checkTimeoutMs: num(d.checkTimeoutMs, "diagnostics.checkTimeoutMs", DEFAULTS.diagnostics.checkTimeoutMs, 1),
    } as DiagnosticsConfig,
    download: {
      stallMs: num(dl.stallMs, "download.stallMs", DEFAULTS.download.stallMs, 1),
      minBytesPerSec: num(dl.minBytesPerSec, "download.minBytesPerSec", DEFAULTS.download.minBytesPerSec),
      rateWindowMs: num(dl.rateWindowMs, "download.rateWindowMs", DEFAULTS.download.rateWindowMs, 1),
      journalEveryBytes: num(dl.journalEveryBytes, "download.journalEveryBytes", DEFAULTS.download.journalEveryBytes, 4096),
      maxBytesPerSec: num(dl.maxBytesPerSec, "download.maxBytesPerSec", DEFAULTS.download.maxBytesPerSec),
    },
    reboot: {
      deadlineMs: num(rb.deadlineMs, "reboot.deadlineMs", DEFAULTS.reboot.deadlineMs),
      pollMs: num(rb.pollMs, "reboot.pollMs", DEFAULTS.reboot.pollMs, 10),
    },
    outboxCapacity: num(o.outboxCapacity, "outboxCapacity", DEFAULTS.outboxCapacity, 4, 1000),
    redirects: redirectsOf(o.redirects),
    networkRetry: retryOf(o.networkRetry, "networkRetry", DEFAULTS.networkRetry),
    antiRollback: antiRollbackOf(o.antiRollback),
  };
  config.diagnostics.waitForNetwork = bool(d.waitForNetwork, "diagnostics.waitForNetwork", false);
  config.diagnostics.networkDeadlineMs = num(d.networkDeadlineMs, "diagnostics.networkDeadlineMs", DEFAULTS.networkDeadlineMs, 1);
  config.diagnostics.builtin = bool(d.builtin, "diagnostics.builtin", true);
  if (config.retry.maxMs < config.retry.baseMs) fail("retry.maxMs", "must be >= retry.baseMs");
  if (config.download.journalEveryBytes % 4096) fail("download.journalEveryBytes", "must be a multiple of 4096");
  // One 4 KB block per stall window at least, or the cap itself would end every attempt.
  const cap = config.download.maxBytesPerSec;
  if (cap > 0 && cap * config.download.stallMs < 2 * 4096 * 1000) fail("download.maxBytesPerSec", `at least ${Math.ceil((2 * 4096 * 1000) / config.download.stallMs)} with stallMs ${config.download.stallMs}`);
  if (o.deltas !== undefined) config.deltas = bool(o.deltas, "deltas", true);
  if (o.imageKeys !== undefined) config.imageKeys = keys(o.imageKeys, "imageKeys");
  const decryptionKey = optStr(o.decryptionKey, "decryptionKey");
  if (decryptionKey !== undefined) config.decryptionKey = decryptionKey;
  const decryptionHmacKey = optStr(o.decryptionHmacKey, "decryptionHmacKey");
  if (decryptionHmacKey !== undefined) config.decryptionHmacKey = decryptionHmacKey;
  const root = optStr(o.root, "root");
  if (root !== undefined) config.root = root;
  const revoked = strList(o.revokedVersions, "revokedVersions");
  if (revoked) config.revokedVersions = revoked;
  const hardware = optStr(o.hardware, "hardware");
  if (hardware !== undefined) config.hardware = hardware;
  const region = optStr(o.region, "region");
  if (region !== undefined) config.region = region;
  const groups = strList(o.groups, "groups");
  if (groups) config.groups = groups;
  if (o.maintenanceWindow !== undefined) {
    const w = obj(o.maintenanceWindow, "maintenanceWindow");
    config.maintenanceWindow = {
      startMinute: num(w.startMinute, "maintenanceWindow.startMinute", undefined, 0, 1439),
      endMinute: num(w.endMinute, "maintenanceWindow.endMinute", undefined, 0, 1440),
    };
  }
  if (o.mqtt !== undefined) {
    const m = obj(o.mqtt, "mqtt");
    const mqtt: MqttConfig = { host: str(m.host, "mqtt.host"), port: num(m.port, "mqtt.port", undefined, 1, 65535) };
    if (m.secure !== undefined) mqtt.secure = bool(m.secure, "mqtt.secure", false);
    if (m.keepaliveMs !== undefined) mqtt.keepaliveMs = num(m.keepaliveMs, "mqtt.keepaliveMs", undefined, 1000);
    const username = optStr(m.username, "mqtt.username");
    if (username !== undefined) mqtt.username = username;
    if (m.password !== undefined) {
      if (typeof m.password !== "string") fail("mqtt.password", "expected a string");
      if (username === undefined) fail("mqtt.password", "needs mqtt.username (MQTT 3.1.1)");
      mqtt.password = m.password;
    }
    const clientId = optStr(m.clientId, "mqtt.clientId");
    if (clientId !== undefined) {
      if (clientId.length > MAX_CLIENT_ID) fail("mqtt.clientId", `at most ${MAX_CLIENT_ID} characters`);
      mqtt.clientId = clientId;
    }
    config.mqtt = mqtt;
  }
  return config;
}
