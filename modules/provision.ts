/*
 * Configuration in layers, and the per-device layer kept in NVS.
 *
 * The raw configuration parseConfig() takes is built from three layers, each winning over the
 * one below:
 *
 *   1. overrides: what the application's code passes (highest)
 *   2. provisioned: this device's values in NVS, domain "xsota.dev" (readProvisioned)
 *   3. defaults: the manifest's config.xsota, the same for every device of a build (lowest)
 *
 * Objects merge key by key; arrays and every other value REPLACE what is below, never merge
 * index by index (Moddable's manifest config merge does that: a user's trustedKeys entry
 * inherited a placeholder's id). A null in a higher layer deletes the key below (e.g. an
 * override `mqtt: null` switches the broker off); undefined is no value. Unknown keys pass
 * through to parseConfig, which judges them as it judges any configuration.
 *
 * NVS domain "xsota.dev", one key per value (Preference: key <= 15 characters, value <= 4000 bytes):
 *
 *   id      string   the device id used instead of the MAC (topics devices/<id>/..., rollout bucket, control commands)
 *   groups  string   JSON array of group names (targeting)
 *   region  string   targeting
 *   user    string   MQTT user name                -> mqtt.username
 *   pass    string   MQTT password                 -> mqtt.password
 *   client  string   MQTT client id                -> mqtt.clientId (default: the device id)
 *   host    string   broker host                   -> mqtt.host
 *   port    integer  broker port (1..65535)        -> mqtt.port
 *   enckey  string   the device's esp_encrypted_img private key, PEM (RSA-3072 or P-256) -> decryptionKey
 *   enchmac string   the ECIES eFuse HMAC key, 64 hex digits -> decryptionHmacKey
 *
 * provision() validates every value before it writes any; each key is then one NVS set.
 */
import type { ResetReason, StorePort, SystemPort } from "./ports";
import { OtaError } from "./errors";
import { MAX_CLIENT_ID, parseConfig, type AppConfig } from "./config";
import { DOMAINS } from "./nvs-domains";
import { utf8Encode } from "./bytes";
import { constant } from "./constant";

export interface Provisioned {
  deviceId?: string;
  groups?: string[];
  region?: string;
  username?: string;
  password?: string;
  clientId?: string;
  host?: string;
  port?: number;
  /** The esp_encrypted_img device key (modules/enc-key.ts): never in a manifest or the build's defaults. */
  decryptionKey?: string;
  decryptionHmacKey?: string;
}

/** For provision(): a value to write, null to delete the key, absent to leave it. */
export type ProvisionValues = { [K in keyof Provisioned]?: Provisioned[K] | null };

type Field = keyof Provisioned;
type Kind = "id" | "groups" | "name" | "secret" | "host" | "port";

const DOMAIN = DOMAINS.provision;
/** nvs_set_str takes 4000 bytes with the terminating NUL (src/store.ts). */
const MAX_STRING = 3999;
/** Device id, region, group names, user name: short names. */
const MAX_NAME = 64;

/** field, NVS key, kind; in this order in NVS and in errors. */
const FIELDS: readonly (readonly [Field, string, Kind])[] = constant([
  ["deviceId", "id", "id"],
  ["groups", "groups", "groups"],
  ["region", "region", "name"],
  ["username", "user", "name"],
  ["password", "pass", "secret"],
  ["clientId", "client", "id"],
  ["host", "host", "host"],
  ["port", "port", "port"],
  ["decryptionKey", "enckey", "secret"],
  ["decryptionHmacKey", "enchmac", "secret"],
] as const);

/** The NVS key of each provisioned field (for tools that write the domain themselves). */
export const PROVISION_KEYS: Readonly<Record<Field, string>> = constant({
  deviceId: "id", groups: "groups", region: "region", username: "user", password: "pass", clientId: "client", host: "host", port: "port", decryptionKey: "enckey", decryptionHmacKey: "enchmac",
});

function bad(key: string, what: string): never {
  throw new OtaError("CONFIG_INVALID", `${DOMAIN}/${key}: ${what}`);
}

function name(v: unknown, key: string, max: number): string {
  if (typeof v !== "string" || v === "") bad(key, "expected a non-empty string");
  if (v.length > max) bad(key, `at most ${max} characters`);
  return v;
}

/** A value checked for its kind; `groups` as the array (the JSON text is made by the caller). */
function check(kind: Kind, key: string, v: unknown): string | number | string[] {
  switch (kind) {
    case "id": {
      // Goes into topics (devices/<id>/...) and client ids: no MQTT wildcard or level separator.
      const s = name(v, key, key === "client" ? MAX_CLIENT_ID : MAX_NAME);
      if (!/^[A-Za-z0-9._:-]+$/.test(s)) bad(key, "letters, digits and . _ : - only");
      return s;
    }
    case "name":
      return name(v, key, MAX_NAME);
    case "secret": {
      // Never echoed in an error.
      if (typeof v !== "string" || v === "") bad(key, "expected a non-empty string");
      if (utf8Encode(v).length > MAX_STRING) bad(key, `over ${MAX_STRING} bytes`);
      return v;
    }
    case "host": {
      const s = name(v, key, 253);
      if (!/^[A-Za-z0-9.:[\]-]+$/.test(s)) bad(key, "expected a host name or address");
      return s;
    }
    case "port":
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) bad(key, "expected an integer 1..65535");
      return v;
    default: {
      if (!Array.isArray(v)) bad(key, "expected an array of group names");
      const list: string[] = [];
      for (let i = 0; i < v.length; i++) list.push(name(v[i], `${key}[${i}]`, MAX_NAME));
      const bytes = utf8Encode(JSON.stringify(list)).length;
      if (bytes > MAX_STRING) bad(key, `${bytes} bytes of JSON, NVS holds ${MAX_STRING}`);
      return list;
    }
  }
}

/**
 * The device's provisioned values (only those stored). Throws CONFIG_INVALID naming the key
 * ("xsota.dev/port: ...") for a stored value of the wrong type or shape; STORE_* from the store.
 */
export function readProvisioned(store: StorePort): Provisioned {
  const out: Provisioned = {};
  for (const [field, key, kind] of FIELDS) {
    let v: unknown = store.get(DOMAIN, key);
    if (v === undefined) continue;
    if (kind === "groups") {
      if (typeof v !== "string") bad(key, "expected JSON text");
      try {
        v = JSON.parse(v);
      } catch {
        bad(key, "not JSON");
      }
    }
    (out as Record<string, unknown>)[field] = check(kind, key, v);
  }
  return out;
}

/**
 * Validate `values` and write them to NVS ("xsota.dev"); null deletes a key, an absent field is
 * left as it is. Nothing is written when any value is bad (CONFIG_INVALID naming the key, or an
 * unknown field). Returns what is provisioned afterwards. Throws STORE_* from the store.
 */
export function provision(store: StorePort, values: ProvisionValues): Provisioned {
  if (typeof values !== "object" || values === null || Array.isArray(values)) throw new OtaError("CONFIG_INVALID", `${DOMAIN}: expected an object of values`);
  for (const f of Object.keys(values)) if (!(f in PROVISION_KEYS)) throw new OtaError("CONFIG_INVALID", `${DOMAIN}: unknown field ${f}`);
  const writes: [string, string | number | null][] = [];
  for (const [field, key, kind] of FIELDS) {
    const v = (values as Record<string, unknown>)[field];
    if (v === undefined) continue;
    if (v === null) {
      writes.push([key, null]);
      continue;
    }
    const ok = check(kind, key, v);
    writes.push([key, Array.isArray(ok) ? JSON.stringify(ok) : ok]);
  }
  for (const [key, v] of writes) {
    if (v === null) store.delete(DOMAIN, key);
    else store.set(DOMAIN, key, v);
  }
  return readProvisioned(store);
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `top` over `base`: objects key by key, anything else (arrays too) replaces; null deletes. Fresh objects and arrays throughout. */
function merge(base: unknown, top: unknown, path: string): unknown {
  if (Array.isArray(top)) {
    const copy: unknown[] = [];
    for (let i = 0; i < top.length; i++) copy.push(merge(undefined, top[i], `${path}${i}.`));
    return copy;
  }
  if (!isObject(top)) return top;
  const out: Json = {};
  if (isObject(base)) for (const k of Object.keys(base)) out[k] = base[k];
  for (const k of Object.keys(top)) {
    if (k === "__proto__") throw new OtaError("CONFIG_INVALID", `${path}__proto__: not a configuration key`);
    const v = top[k];
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v, `${path}${k}.`);
  }
  return out;
}

function layer(v: unknown, what: string): Json {
  if (v === undefined || v === null) return {};
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw new OtaError("CONFIG_INVALID", `${what}: not JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(v)) throw new OtaError("CONFIG_INVALID", `${what}: expected an object`);
  if (Object.prototype.hasOwnProperty.call(v, "__proto__")) throw new OtaError("CONFIG_INVALID", `${what}: __proto__ is not a configuration key`);
  return v;
}

/** The provisioned values as a configuration layer (the device id is not configuration: see withDeviceId). */
export function provisionedLayer(p: Provisioned): Json {
  const out: Json = {};
  if (p.groups !== undefined) out.groups = p.groups.slice();
  if (p.region !== undefined) out.region = p.region;
  if (p.decryptionKey !== undefined) out.decryptionKey = p.decryptionKey;
  if (p.decryptionHmacKey !== undefined) out.decryptionHmacKey = p.decryptionHmacKey;
  const mqtt: Json = {};
  if (p.host !== undefined) mqtt.host = p.host;
  if (p.port !== undefined) mqtt.port = p.port;
  if (p.username !== undefined) mqtt.username = p.username;
  if (p.password !== undefined) mqtt.password = p.password;
  if (p.clientId !== undefined) mqtt.clientId = p.clientId;
  if (Object.keys(mqtt).length > 0) out.mqtt = mqtt;
  return out;
}

/**
 * The raw configuration for parseConfig(): `overrides` > `provisioned` > `defaults` (see the
 * header). `defaults` and `overrides` are objects, JSON text or undefined (a frozen mc/config is fine); the
 * result is a fresh tree. Throws CONFIG_INVALID for a layer that is not an object.
 */
export function layerConfig(defaults: unknown, provisioned: Provisioned, overrides?: unknown): unknown {
  const base = merge(undefined, layer(defaults, "defaults"), "");
  return merge(merge(base, provisionedLayer(provisioned), ""), layer(overrides, "overrides"), "");
}

export interface Configured {
  config: AppConfig;
  provisioned: Provisioned;
}

/**
 * What an entry module does before start(): read the device's NVS layer, put it between the
 * manifest's defaults and the code's overrides, validate. Then `withDeviceId(ports.system,
 * provisioned.deviceId)` once the ports exist. Throws CONFIG_INVALID (a bad layer, stored value
 * or resulting field) and STORE_*.
 */
export function configure(store: StorePort, defaults: unknown, overrides?: unknown): Configured {
  const provisioned = readProvisioned(store);
  return { config: parseConfig(layerConfig(defaults, provisioned, overrides)), provisioned };
}

/** A SystemPort whose deviceId() is the provisioned id; everything else is the chip's. */
export class ProvisionedSystem implements SystemPort {
  constructor(private readonly system: SystemPort, private readonly id: string) {}
  restart(reason: string): void {
    this.system.restart(reason);
  }
  resetReason(): ResetReason {
    return this.system.resetReason();
  }
  deviceId(): string {
    return this.id;
  }
  hardwareRevision(): string {
    return this.system.hardwareRevision();
  }
  chipId(): number {
    return this.system.chipId();
  }
  freeHeap(): number {
    return this.system.freeHeap();
  }
  log(line: string): void {
    this.system.log(line);
  }
}

/** `system` with deviceId() answering `id` when one is provisioned; `system` itself otherwise. */
export function withDeviceId(system: SystemPort, id: string | undefined): SystemPort {
  return id === undefined ? system : new ProvisionedSystem(system, id);
}
