/*
 * Node side of the bridge: answers the XS stubs' synchronous requests by calling the real
 * Ports the SimDevice built, and turns the ports' asynchronous callbacks (timers, HTTP, MQTT)
 * into events for the worker. Objects that cannot cross (partitions, SHA-256 states, requests,
 * MQTT clients) stay here, named by a handle.
 */
import type { EncCipherPort, FlashPartition, GcmDecrypt, HttpRequest, MqttClient, Ports, Sha256, StoreValue } from "../../../modules/ports";
import { OtaError } from "../../../modules/errors";
import { Ev, HEADER, Op, PUB_BINARY, PUB_RETAIN, STATUS_ERROR, STATUS_OK, Val, type WireError } from "./protocol";

export type Deliver = (event: Uint8Array) => void;

const OK_EMPTY = Uint8Array.of(STATUS_OK);

function ok(tail?: Uint8Array): Uint8Array {
  if (!tail || tail.length === 0) return OK_EMPTY;
  const out = new Uint8Array(1 + tail.length);
  out[0] = STATUS_OK;
  out.set(tail, 1);
  return out;
}

function okU32(...values: number[]): Uint8Array {
  const out = Buffer.alloc(1 + 4 * values.length);
  out[0] = STATUS_OK;
  values.forEach((v, i) => out.writeUInt32LE(v >>> 0, 1 + 4 * i));
  return out;
}

function okF64(value: number): Uint8Array {
  const out = Buffer.alloc(9);
  out[0] = STATUS_OK;
  out.writeDoubleLE(value, 1);
  return out;
}

function okJson(value: unknown): Uint8Array {
  return ok(Buffer.from(JSON.stringify(value), "utf8"));
}

export function encodeError(e: unknown): Uint8Array {
  let w: WireError;
  if (e instanceof OtaError) w = { name: e.name, message: e.message, code: e.code, detail: e.detail };
  else if (e instanceof Error) w = { name: e.name, message: e.message };
  else w = { name: "Error", message: String(e) };
  const body = Buffer.from(JSON.stringify(w), "utf8");
  const out = new Uint8Array(1 + body.length);
  out[0] = STATUS_ERROR;
  out.set(body, 1);
  return out;
}

export function event(kind: number, handle = 0, a = 0, tail?: Uint8Array | string): Uint8Array {
  const t = typeof tail === "string" ? Buffer.from(tail, "utf8") : tail;
  const out = Buffer.alloc(HEADER + (t ? t.length : 0));
  out.writeUInt32LE(kind, 0);
  out.writeUInt32LE(handle >>> 0, 4);
  out.writeUInt32LE(a >>> 0, 8);
  if (t) out.set(t, HEADER);
  return out;
}

function readFields(tail: Buffer): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < tail.length; ) {
    const n = tail.readUInt32LE(o);
    out.push(new Uint8Array(tail.subarray(o + 4, o + 4 + n)));
    o += 4 + n;
  }
  return out;
}

function decodeValue(b: Buffer): StoreValue {
  switch (b[0]) {
    case Val.STRING: return b.subarray(1).toString("utf8");
    case Val.NUMBER: return b.readDoubleLE(1);
    case Val.TRUE: return true;
    case Val.FALSE: return false;
    case Val.BYTES: return new Uint8Array(b.subarray(1)).slice().buffer;
    default: throw new TypeError("bad store value tag");
  }
}

function encodeValue(v: StoreValue | undefined): Uint8Array {
  if (v === undefined) return Uint8Array.of(Val.UNDEFINED);
  if (typeof v === "string") return Buffer.concat([Uint8Array.of(Val.STRING), Buffer.from(v, "utf8")]);
  if (typeof v === "number") {
    const b = Buffer.alloc(9);
    b[0] = Val.NUMBER;
    b.writeDoubleLE(v, 1);
    return b;
  }
  if (typeof v === "boolean") return Uint8Array.of(v ? Val.TRUE : Val.FALSE);
  return Buffer.concat([Uint8Array.of(Val.BYTES), new Uint8Array(v)]);
}

export interface BridgeStats {
  requests: number;
  events: number;
  bytesIn: number;
  bytesOut: number;
}

export class Bridge {
  readonly stats: BridgeStats = { requests: 0, events: 0, bytesIn: 0, bytesOut: 0 };
  private next = 1;
  private partitions = new Map<number, FlashPartition>();
  private hashes = new Map<number, Sha256>();
  private gcms = new Map<number, GcmDecrypt>();
  private requests = new Map<number, HttpRequest>();
  private clients = new Map<number, MqttClient>();

  constructor(
    private readonly ports: Ports,
    private readonly deliver: Deliver,
    private readonly onPanic: (message: string) => void,
  ) {}

  private emit(e: Uint8Array): void {
    this.stats.events++;
    this.deliver(e);
  }

  /** The worker's issueCommand, answered synchronously. Port errors go back to XS as errors. */
  handle(request: Uint8Array): Uint8Array {
    this.stats.requests++;
    this.stats.bytesIn += request.length;
    const req = Buffer.from(request.buffer, request.byteOffset, request.byteLength);
    try {
      const reply = this.dispatch(req.readUInt32LE(0), req.readUInt32LE(4), req.readUInt32LE(8), req.readUInt32LE(12), req.subarray(HEADER));
      this.stats.bytesOut += reply.length;
      return reply;
    } catch (e) {
      return encodeError(e);
    }
  }

  private dispatch(op: number, a: number, b: number, c: number, tail: Buffer): Uint8Array {
    const p = this.ports;
    switch (op) {
      case Op.FLASH_OPEN: {
        const part = p.flash.open(tail.toString("utf8"));
        const h = this.next++;
        this.partitions.set(h, part);
        return okU32(h, part.byteLength, part.blockSize);
      }
      case Op.FLASH_READ: {
        const out = new Uint8Array(1 + c);
        this.partition(a).read(b, out.subarray(1));
        return out;
      }
      case Op.FLASH_WRITE:
        this.partition(a).write(b, new Uint8Array(tail.buffer, tail.byteOffset, tail.byteLength));
        return OK_EMPTY;
      case Op.FLASH_ERASE:
        this.partition(a).eraseBlock(b);
        return OK_EMPTY;
      case Op.FLASH_SLOTS: {
        const s = p.flash.slots();
        return okU32(s.count, s.running, s.next);
      }
      case Op.STORE_GET: {
        const [d, k] = JSON.parse(tail.toString("utf8")) as [string, string];
        return ok(encodeValue(p.store.get(d, k)));
      }
      case Op.STORE_SET: {
        const [d, k] = JSON.parse(tail.subarray(0, a).toString("utf8")) as [string, string];
        p.store.set(d, k, decodeValue(tail.subarray(a)));
        return OK_EMPTY;
      }
      case Op.STORE_DELETE: {
        const [d, k] = JSON.parse(tail.toString("utf8")) as [string, string];
        p.store.delete(d, k);
        return OK_EMPTY;
      }
      case Op.STORE_KEYS:
        return okJson(p.store.keys(JSON.parse(tail.toString("utf8")) as string));
      case Op.HTTP_REQUEST:
        return okU32(this.httpRequest(JSON.parse(tail.toString("utf8"))));
      case Op.HTTP_CLOSE: {
        const r = this.requests.get(a);
        this.requests.delete(a);
        r?.close();
        return OK_EMPTY;
      }
      case Op.SHA_NEW: {
        const h = this.next++;
        this.hashes.set(h, p.crypto.sha256());
        return okU32(h);
      }
      case Op.SHA_WRITE:
        this.hash(a).write(new Uint8Array(tail.buffer, tail.byteOffset, tail.byteLength));
        return OK_EMPTY;
      case Op.SHA_CLOSE:
        return ok(this.hash(a).close());
      case Op.SHA_DIGEST:
        return ok(this.hash(a).digest());
      case Op.SHA_RESET:
        this.hash(a).reset();
        return OK_EMPTY;
      case Op.ECDSA_VERIFY: {
        const [key, digest, sig] = readFields(tail);
        return Uint8Array.of(STATUS_OK, p.crypto.verifyEcdsaP256(key!, digest!, sig!) ? 1 : 0);
      }
      case Op.RSA_VERIFY: {
        const [n, e, digest, sig] = readFields(tail);
        return Uint8Array.of(STATUS_OK, p.crypto.verifyRsaPkcs1Sha256(n!, e!, digest!, sig!) ? 1 : 0);
      }
      case Op.RSA_PRIVATE: {
        const [n, e, d, pp, q, dp, dq, qi, block] = readFields(tail);
        return ok(this.cipher().rsaPrivateRaw({ n: n!, e: e!, d: d!, p: pp!, q: q!, dp: dp!, dq: dq!, qi: qi! }, block!));
      }
      case Op.ECDH_P256: {
        const [d, xy] = readFields(tail);
        return ok(this.cipher().ecdhP256(d!, xy!));
      }
      case Op.GCM_NEW: {
        const [key, iv] = readFields(tail);
        const h = this.next++;
        this.gcms.set(h, this.cipher().aesGcmDecrypt(key!, iv!));
        return okU32(h);
      }
      case Op.GCM_UPDATE:
        return ok(this.gcm(a).update(new Uint8Array(tail.buffer, tail.byteOffset, tail.byteLength)));
      case Op.GCM_REPLAY:
        this.gcm(a).replay(new Uint8Array(tail.buffer, tail.byteOffset, tail.byteLength));
        return OK_EMPTY;
      case Op.GCM_FINISH: {
        const g = this.gcm(a);
        this.gcms.delete(a);
        return Uint8Array.of(STATUS_OK, g.finish(new Uint8Array(tail)) ? 1 : 0);
      }
      case Op.MQTT_CONNECT:
        return okU32(this.mqttConnect(JSON.parse(tail.toString("utf8"))));
      case Op.MQTT_PUBLISH: {
        const topic = tail.subarray(0, c).toString("utf8");
        const body = tail.subarray(c);
        const payload = b & PUB_BINARY ? new Uint8Array(body) : body.toString("utf8");
        const id = this.client(a).publish(topic, payload, { qos: (b & 1) as 0 | 1, retain: (b & PUB_RETAIN) !== 0 });
        return okU32(id);
      }
      case Op.MQTT_SUBSCRIBE:
        this.client(a).subscribe(tail.toString("utf8"));
        return OK_EMPTY;
      case Op.MQTT_CLOSE: {
        const cl = this.clients.get(a);
        this.clients.delete(a);
        cl?.close();
        return OK_EMPTY;
      }
      case Op.CLOCK_NOW:
        return okF64(p.clock.now());
      case Op.CLOCK_WALL:
        return okF64(p.clock.wallTime());
      case Op.TIMER_SET: {
        const ms = tail.readDoubleLE(0);
        let id = 0;
        id = p.clock.setTimeout(() => this.emit(event(Ev.TIMER, id)), ms);
        return okU32(id);
      }
      case Op.TIMER_CLEAR:
        p.clock.clearTimeout(a);
        return OK_EMPTY;
      case Op.SYS_RESTART:
        p.system.restart(tail.toString("utf8"));
        return OK_EMPTY;
      case Op.SYS_INFO: {
        const s = p.system;
        return okJson({ resetReason: s.resetReason(), deviceId: s.deviceId(), hardwareRevision: s.hardwareRevision(), chipId: s.chipId(), freeHeap: s.freeHeap() });
      }
      case Op.SYS_LOG:
        p.system.log(tail.toString("utf8"));
        return OK_EMPTY;
      case Op.PANIC:
        this.onPanic(tail.toString("utf8"));
        return OK_EMPTY;
      default:
        throw new TypeError(`xs bridge: unknown op ${op}`);
    }
  }

  private partition(h: number): FlashPartition {
    const part = this.partitions.get(h);
    if (!part) throw new TypeError(`xs bridge: no partition ${h}`);
    return part;
  }

  private cipher(): EncCipherPort {
    const c = this.ports.crypto.enc;
    if (!c) throw new TypeError("xs bridge: this device's crypto has no ciphers");
    return c;
  }

  private gcm(h: number): GcmDecrypt {
    const g = this.gcms.get(h);
    if (!g) throw new TypeError(`xs bridge: no gcm ${h}`);
    return g;
  }

  private hash(h: number): Sha256 {
    const s = this.hashes.get(h);
    if (!s) throw new TypeError(`xs bridge: no sha256 ${h}`);
    return s;
  }

  private client(h: number): MqttClient {
    const cl = this.clients.get(h);
    if (!cl) throw new OtaError("MQTT_CLOSED", `client ${h} is closed`);
    return cl;
  }

  private httpRequest(options: { url: string; method?: "GET" | "HEAD"; headers?: [string, string][]; ca?: string }): number {
    const h = this.next++;
    const done = () => this.requests.delete(h);
    const req = this.ports.http.request(
      { url: options.url, ...(options.method ? { method: options.method } : {}), ...(options.headers ? { headers: options.headers } : {}), ...(options.ca !== undefined ? { ca: options.ca } : {}) },
      {
        onStatus: (s) => this.emit(event(Ev.HTTP_STATUS, h, s)),
        onHeader: (n, v) => this.emit(event(Ev.HTTP_HEADER, h, 0, JSON.stringify([n, v]))),
        onHeadersComplete: () => this.emit(event(Ev.HTTP_HEADERS_COMPLETE, h)),
        // Take every byte now; the XS side keeps what its handler leaves unread for the next call.
        onData: (available, read) => {
          const out = Buffer.alloc(HEADER + available);
          const n = read(out.subarray(HEADER));
          out.writeUInt32LE(Ev.HTTP_DATA, 0);
          out.writeUInt32LE(h, 4);
          this.emit(out.subarray(0, HEADER + n));
        },
        onComplete: () => {
          done();
          this.emit(event(Ev.HTTP_COMPLETE, h));
        },
        onError: (code, detail) => {
          done();
          this.emit(event(Ev.HTTP_ERROR, h, 0, JSON.stringify([code, detail])));
        },
      },
    );
    this.requests.set(h, req);
    return h;
  }

  private mqttConnect(options: Parameters<NonNullable<Ports["mqtt"]>["connect"]>[0]): number {
    const mqtt = this.ports.mqtt;
    if (!mqtt) throw new OtaError("MQTT_CONNECT", "this device has no MQTT port");
    const h = this.next++;
    const client = mqtt.connect(options, {
      onReady: () => this.emit(event(Ev.MQTT_READY, h)),
      onMessage: (topic, payload) => {
        const t = Buffer.from(topic, "utf8");
        this.emit(event(Ev.MQTT_MESSAGE, h, t.length, Buffer.concat([t, payload])));
      },
      onClose: (reason) => {
        this.clients.delete(h);
        this.emit(event(Ev.MQTT_CLOSE, h, 0, reason));
      },
      onPublished: (id) => this.emit(event(Ev.MQTT_PUBLISHED, h, id)),
    });
    this.clients.set(h, client);
    return h;
  }
}
