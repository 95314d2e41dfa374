/*
 * XS side: the bundle's entry. `install(bootFirmware)` defines the two globals Node calls:
 * xsotaBoot(json) for one boot, and handleCommand(ArrayBuffer) for each event. A throw out of
 * the firmware's main or out of a callback is a panic, reported like the Node engine's
 * (PANIC op -> "@panic <message>" on the system log), never an uncaught worker exception.
 */
import "./host";
import type { Ports } from "../../../../modules/ports";
import type { FirmwareBoot } from "../../engine";
import { Ev, HEADER, Op } from "../protocol";
import { call, collectGarbage, fromUtf8, utf8 } from "./host";
import { httpHandlers, httpPull, makePorts, mqttHandlers, timers } from "./ports";

type BootFn = (ports: Ports, boot: FirmwareBoot) => { close(): void } | void;

const EMPTY = new ArrayBuffer(0);

function panic(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  call(Op.PANIC, 0, 0, 0, utf8(message));
}

function guard(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    panic(e);
  }
}

function readPending(entry: { pending: Uint8Array[]; queued: number }, target: Uint8Array): number {
  let n = 0;
  const q = entry.pending;
  while (n < target.byteLength && q.length) {
    const head = q[0]!;
    const take = Math.min(head.byteLength, target.byteLength - n);
    target.set(take === head.byteLength ? head : head.subarray(0, take), n);
    n += take;
    if (take === head.byteLength) q.shift();
    else q[0] = head.subarray(take);
  }
  entry.queued -= n;
  return n;
}

function deliverHttp(h: number): void {
  const entry = httpHandlers.get(h);
  if (!entry) return;
  if (entry.queued > 0) guard(() => entry.handler.onData(entry.queued, (target) => readPending(entry, target)));
  if (!entry.ended || entry.queued > 0 || !httpHandlers.has(h)) return;
  httpHandlers.delete(h);
  guard(() => entry.handler.onComplete());
}
httpPull.deliver = deliverHttp;

function dispatch(message: ArrayBuffer): void {
  const v = new DataView(message);
  const kind = v.getUint32(0, true);
  const h = v.getUint32(4, true);
  const a = v.getUint32(8, true);
  const tail = new Uint8Array(message, HEADER);
  switch (kind) {
    case Ev.TIMER: {
      const cb = timers.get(h);
      if (!cb) return;
      timers.delete(h);
      guard(cb);
      return;
    }
    case Ev.HTTP_STATUS:
    case Ev.HTTP_HEADER:
    case Ev.HTTP_HEADERS_COMPLETE:
    case Ev.HTTP_DATA:
    case Ev.HTTP_COMPLETE:
    case Ev.HTTP_ERROR: {
      const entry = httpHandlers.get(h);
      if (!entry) return;
      const handler = entry.handler;
      // The Node port drops callbacks once the request is closed; so does this side.
      if (kind === Ev.HTTP_STATUS) guard(() => handler.onStatus(a));
      else if (kind === Ev.HTTP_HEADER) {
        const [name, value] = JSON.parse(fromUtf8(tail)) as [string, string];
        guard(() => handler.onHeader(name, value));
      } else if (kind === Ev.HTTP_HEADERS_COMPLETE) guard(() => handler.onHeadersComplete());
      else if (kind === Ev.HTTP_DATA) {
        entry.pending.push(tail);
        entry.queued += tail.byteLength;
        guard(() => handler.onData(entry.queued, (target) => readPending(entry, target)));
      } else if (kind === Ev.HTTP_COMPLETE) {
        // As the Node port does at the end: offer what is left, complete only once all is read
        // (now, or when a handler that left bytes unread pulls them).
        entry.ended = true;
        deliverHttp(h);
      } else {
        httpHandlers.delete(h);
        const [code, detail] = JSON.parse(fromUtf8(tail)) as [string, string];
        guard(() => handler.onError(code, detail));
      }
      return;
    }
    case Ev.MQTT_READY:
    case Ev.MQTT_MESSAGE:
    case Ev.MQTT_CLOSE:
    case Ev.MQTT_PUBLISHED: {
      const handler = mqttHandlers.get(h);
      if (!handler) return;
      if (kind === Ev.MQTT_READY) guard(() => handler.onReady());
      else if (kind === Ev.MQTT_MESSAGE) {
        const topic = fromUtf8(tail.subarray(0, a));
        const payload = tail.slice(a);
        guard(() => handler.onMessage(topic, payload));
      } else if (kind === Ev.MQTT_CLOSE) {
        mqttHandlers.delete(h);
        guard(() => handler.onClose(fromUtf8(tail)));
      } else if (handler.onPublished) {
        const cb = handler.onPublished.bind(handler);
        guard(() => cb(a));
      }
      return;
    }
    default:
      return;
  }
}

function probe(): ArrayBuffer {
  const g = globalThis as Record<string, unknown>;
  const facts = {
    lockdown: typeof g.lockdown === "function",
    frozenIntrinsics: [Object.prototype, Array.prototype, Function.prototype, Uint8Array.prototype, Promise.prototype, Error.prototype].every((o) => Object.isFrozen(o)),
    hardened: typeof g.harden === "function",
    absent: ["issueCommand", "print", "TextEncoder", "TextDecoder", "setImmediate", "setTimeout", "performance", "process", "Buffer", "require"].filter((n) => n in g),
    pendingTimers: timers.size,
    pendingHttp: httpHandlers.size,
  };
  return utf8(JSON.stringify(facts)).slice().buffer;
}

export function install(bootFirmware: BootFn): void {
  const g = globalThis as Record<string, unknown>;
  let running: { close(): void } | void;
  g.xsotaBoot = (text: string, withMqtt: boolean): void => {
    const boot = JSON.parse(text) as FirmwareBoot;
    try {
      running = bootFirmware(makePorts(withMqtt), boot);
    } catch (e) {
      panic(e);
    }
  };
  g.xsotaStop = (): void => {
    try {
      running?.close();
    } catch {
      // the ports are dead; nothing to release
    }
  };
  g.handleCommand = (message: ArrayBuffer): ArrayBuffer => {
    const kind = new DataView(message).getUint32(0, true);
    if (kind === Ev.PROBE) return probe();
    if (kind === Ev.GC) {
      collectGarbage();
      return EMPTY;
    }
    dispatch(message);
    return EMPTY;
  };
}
