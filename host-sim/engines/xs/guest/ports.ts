/*
 * XS side: every port of modules/ports.ts as a stub that calls Node synchronously (call()),
 * the way a native host function is synchronous on the chip; callbacks (timers, HTTP, MQTT)
 * come back as events, dispatched by events.ts to the handlers registered here.
 */
import type {
  EncCipherPort,
  CryptoPort, FlashPartition, FlashPort, HttpHandler, HttpPort, MqttHandler, MqttPort, Ports, ResetReason,
  Sha256, SlotInfo, StorePort, StoreValue, SystemPort, ClockPort, TimerId,
} from "../../../../modules/ports";
import { Op, Val, PUB_BINARY, PUB_RETAIN } from "../protocol";
import { call, callJson, f64, fromUtf8, json, u32, utf8 } from "./host";

/** Handlers of outstanding callbacks, by the handle Node gave them. */
export const timers = new Map<number, () => void>();
export const httpHandlers = new Map<number, { handler: HttpHandler; pending: Uint8Array[]; queued: number; ended?: boolean }>();
/** Offers a request's unread bytes again (HttpRequest.pull); set by main.ts, which owns delivery. */
export const httpPull = { deliver: (_h: number): void => {} };
export const mqttHandlers = new Map<number, MqttHandler>();

class PartitionStub implements FlashPartition {
  constructor(private readonly h: number, readonly byteLength: number, readonly blockSize: number) {}
  read(offset: number, target: Uint8Array): void {
    if (target.byteLength === 0) return;
    target.set(call(Op.FLASH_READ, this.h, offset, target.byteLength));
  }
  write(offset: number, data: Uint8Array): void {
    call(Op.FLASH_WRITE, this.h, offset, 0, data);
  }
  eraseBlock(block: number): void {
    call(Op.FLASH_ERASE, this.h, block);
  }
}

const flash: FlashPort = {
  open(label: string): FlashPartition {
    const r = call(Op.FLASH_OPEN, 0, 0, 0, utf8(label));
    return new PartitionStub(u32(r, 0), u32(r, 1), u32(r, 2));
  },
  slots(): SlotInfo {
    const r = call(Op.FLASH_SLOTS);
    return { count: u32(r, 0), running: u32(r, 1), next: u32(r, 2) };
  },
};

function encodeValue(value: StoreValue): Uint8Array {
  if (typeof value === "string") {
    const s = utf8(value);
    const out = new Uint8Array(1 + s.length);
    out[0] = Val.STRING;
    out.set(s, 1);
    return out;
  }
  if (typeof value === "number") {
    const out = new Uint8Array(9);
    out[0] = Val.NUMBER;
    new DataView(out.buffer).setFloat64(1, value, true);
    return out;
  }
  if (typeof value === "boolean") return Uint8Array.of(value ? Val.TRUE : Val.FALSE);
  if (value instanceof ArrayBuffer) {
    const out = new Uint8Array(1 + value.byteLength);
    out[0] = Val.BYTES;
    out.set(new Uint8Array(value), 1);
    return out;
  }
  throw new TypeError("store value must be a string, number, boolean or ArrayBuffer");
}

function decodeValue(r: Uint8Array): StoreValue | undefined {
  switch (r[0]) {
    case Val.STRING: return fromUtf8(r.subarray(1));
    case Val.NUMBER: return new DataView(r.buffer, r.byteOffset + 1, 8).getFloat64(0, true);
    case Val.TRUE: return true;
    case Val.FALSE: return false;
    case Val.BYTES: return r.slice(1).buffer;
    default: return undefined;
  }
}

const store: StorePort = {
  get: (domain, key) => decodeValue(callJson(Op.STORE_GET, [domain, key])),
  set(domain, key, value) {
    const names = utf8(JSON.stringify([domain, key]));
    call(Op.STORE_SET, names.length, 0, 0, names, encodeValue(value));
  },
  delete(domain, key) {
    callJson(Op.STORE_DELETE, [domain, key]);
  },
  keys: (domain) => json<string[]>(callJson(Op.STORE_KEYS, domain)),
};

const http: HttpPort = {
  request(options, handler) {
    const h = u32(callJson(Op.HTTP_REQUEST, { url: options.url, method: options.method, headers: options.headers, ca: options.ca }));
    httpHandlers.set(h, { handler, pending: [], queued: 0 });
    return {
      close() {
        if (!httpHandlers.delete(h)) return;
        call(Op.HTTP_CLOSE, h);
      },
      pull: () => httpPull.deliver(h),
    };
  },
};

class ShaStub implements Sha256 {
  constructor(private readonly h: number) {}
  write(data: Uint8Array): void {
    call(Op.SHA_WRITE, this.h, 0, 0, data);
  }
  close(): Uint8Array {
    return call(Op.SHA_CLOSE, this.h).slice();
  }
  digest(): Uint8Array {
    return call(Op.SHA_DIGEST, this.h).slice();
  }
  reset(): void {
    call(Op.SHA_RESET, this.h);
  }
}

function fields(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += 4 + p.byteLength;
  const out = new Uint8Array(n);
  const v = new DataView(out.buffer);
  let o = 0;
  for (const p of parts) {
    v.setUint32(o, p.byteLength, true);
    out.set(p, o + 4);
    o += 4 + p.byteLength;
  }
  return out;
}

/** The esp_encrypted_img ciphers, bridged to Node's (backend/crypto.ts nodeEncCipher); a GCM state stays there, named by a handle. */
const enc: EncCipherPort = {
  rsaPrivateRaw: (k, block) => call(Op.RSA_PRIVATE, 0, 0, 0, fields([k.n, k.e, k.d, k.p, k.q, k.dp, k.dq, k.qi, block])).slice(),
  ecdhP256: (d, xy) => call(Op.ECDH_P256, 0, 0, 0, fields([d, xy])).slice(),
  aesGcmDecrypt(key, iv) {
    const h = u32(call(Op.GCM_NEW, 0, 0, 0, fields([key, iv])));
    return {
      update: (ciphertext) => call(Op.GCM_UPDATE, h, 0, 0, ciphertext).slice(),
      replay(plaintext) {
        call(Op.GCM_REPLAY, h, 0, 0, plaintext);
      },
      finish: (tag) => call(Op.GCM_FINISH, h, 0, 0, tag)[0] === 1,
    };
  },
};

const crypto: CryptoPort = {
  enc,
  sha256: () => new ShaStub(u32(call(Op.SHA_NEW))),
  verifyEcdsaP256: (publicKey, digest, signature) => call(Op.ECDSA_VERIFY, 0, 0, 0, fields([publicKey, digest, signature]))[0] === 1,
  verifyRsaPkcs1Sha256: (modulus, exponent, digest, signature) =>
    call(Op.RSA_VERIFY, 0, 0, 0, fields([modulus, exponent, digest, signature]))[0] === 1,
};

const mqtt: MqttPort = {
  connect(options, handler) {
    const h = u32(callJson(Op.MQTT_CONNECT, options));
    mqttHandlers.set(h, handler);
    return {
      publish(topic, payload, o) {
        const t = utf8(topic);
        const binary = typeof payload !== "string";
        const p = binary ? payload : utf8(payload);
        const flags = (o?.qos ?? 0) | (o?.retain ? PUB_RETAIN : 0) | (binary ? PUB_BINARY : 0);
        return u32(call(Op.MQTT_PUBLISH, h, flags, t.length, t, p));
      },
      subscribe(topic) {
        call(Op.MQTT_SUBSCRIBE, h, 0, 0, utf8(topic));
      },
      close() {
        if (!mqttHandlers.delete(h)) return;
        call(Op.MQTT_CLOSE, h);
      },
    };
  },
};

const msBuf = new Uint8Array(8);
const msView = new DataView(msBuf.buffer);
const clock: ClockPort = {
  now: () => f64(call(Op.CLOCK_NOW)),
  wallTime: () => f64(call(Op.CLOCK_WALL)),
  setTimeout(callback: () => void, ms: number): TimerId {
    msView.setFloat64(0, ms, true);
    const id = u32(call(Op.TIMER_SET, 0, 0, 0, msBuf));
    timers.set(id, callback);
    return id;
  },
  clearTimeout(id: TimerId): void {
    // A cleared timer may already be on its way as an event: dropping the handler drops it.
    if (timers.delete(id)) call(Op.TIMER_CLEAR, id);
  },
};

interface SysInfo { resetReason: ResetReason; deviceId: string; hardwareRevision: string; chipId: number; freeHeap: number }
let info: SysInfo | undefined;
const sysInfo = (): SysInfo => (info ??= json<SysInfo>(call(Op.SYS_INFO)));

const system: SystemPort = {
  restart(reason) {
    call(Op.SYS_RESTART, 0, 0, 0, utf8(reason));
  },
  resetReason: () => sysInfo().resetReason,
  deviceId: () => sysInfo().deviceId,
  hardwareRevision: () => sysInfo().hardwareRevision,
  chipId: () => sysInfo().chipId,
  freeHeap: () => json<SysInfo>(call(Op.SYS_INFO)).freeHeap,
  log(line) {
    call(Op.SYS_LOG, 0, 0, 0, utf8(line));
  },
};

/** The Ports object handed to the firmware; `withMqtt` mirrors whether Node's Ports has one. */
export function makePorts(withMqtt: boolean): Ports {
  const ports: Ports = { flash, store, http, crypto, clock, system };
  if (withMqtt) ports.mqtt = mqtt;
  return ports;
}
