/*
 * What the fleet controller accepts from devices/<id>/{events,state,version,online}: each payload
 * checked for the shape the log stores before it is queued, so one malformed message (valid JSON
 * of the wrong shape: `null`, an object where a string goes, a seq that is no integer) is parked
 * with its reason instead of failing the batch it is in and being retried forever.
 *
 * The device id is the topic's second level. That is the device's word only under a broker ACL
 * that lets a client publish under devices/<its own user name>/ alone (deploy/mosquitto/acl);
 * on an open broker any client can write any device's topics (README "Broker ACL").
 */
import type { AuditEvent } from "../../modules/events";
import type { DeviceState } from "../../modules/reporter";
import type { Ingest } from "./audit-store";

/** Longest string field kept (detail, code, versions...). */
const MAX_FIELD = 4096;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function check(ok: boolean, what: string): void {
  if (!ok) throw new Malformed(what);
}
class Malformed extends Error {}

const optStr = (o: Obj, k: string) => check(o[k] === undefined || o[k] === null || (typeof o[k] === "string" && (o[k] as string).length <= MAX_FIELD), `${k}: expected a string`);
const optNum = (o: Obj, k: string) => check(o[k] === undefined || o[k] === null || (typeof o[k] === "number" && Number.isFinite(o[k])), `${k}: expected a number`);
const optInt = (o: Obj, k: string) => check(o[k] === undefined || o[k] === null || Number.isSafeInteger(o[k]), `${k}: expected an integer`);

function event(v: unknown): AuditEvent {
  check(isObj(v), "event: expected a JSON object");
  const o = v as Obj;
  check(Number.isSafeInteger(o.seq) && (o.seq as number) >= 0, "seq: expected an integer >= 0");
  check(typeof o.state === "string" && o.state.length > 0 && o.state.length <= 64, "state: expected a state name");
  for (const k of ["time", "uptime", "progress"]) optNum(o, k);
  for (const k of ["from", "to", "code", "detail", "rollout"]) optStr(o, k);
  return o as unknown as AuditEvent;
}

function state(v: unknown): DeviceState {
  check(isObj(v), "state: expected a JSON object");
  const o = v as Obj;
  for (const k of ["version", "hardware", "region", "project"]) optStr(o, k);
  for (const k of ["slot", "secure_version"]) optInt(o, k);
  check(o.groups === undefined || (Array.isArray(o.groups) && o.groups.every((g) => typeof g === "string" && g.length <= MAX_FIELD)), "groups: expected a list of names");
  check(o.last === undefined || o.last === null || isObj(o.last), "last: expected an object");
  if (isObj(o.last)) for (const k of ["state", "code"]) optStr(o.last, k);
  return o as unknown as DeviceState;
}

/**
 * The log item for a message on `topic`, or why it is malformed ({ reason }), or undefined for a
 * topic that is not a device report (ignored) or an empty retained payload that only clears a topic.
 */
export function deviceMessage(topic: string, text: string, at: number): { item: Ingest } | { reason: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 3 || parts[0] !== "devices" || !parts[1]) return undefined;
  const device = parts[1];
  try {
    switch (parts[2]) {
      case "events":
        return { item: { kind: "event", device, event: event(JSON.parse(text)), at } };
      case "state":
        return text ? { item: { kind: "state", device, state: state(JSON.parse(text)), at } } : undefined;
      case "version":
        if (!text) return undefined;
        check(text.length <= 64 && !/[\u0000-\u001f]/.test(text), "version: expected a short line of text");
        return { item: { kind: "version", device, version: text, at } };
      case "online":
        check(text === "1" || text === "0" || text === "", "online: expected 1 or 0");
        return { item: { kind: "online", device, online: text === "1", at } };
      default:
        return undefined;
    }
  } catch (e) {
    return { reason: e instanceof Malformed ? e.message : `not JSON (${(e as Error).message})` };
  }
}
