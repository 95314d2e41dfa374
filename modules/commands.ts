/*
 * devices/<id>/cmd, decoded and verified (the reporter, modules/reporter.ts, acts on the result):
 *
 *   {"cmd": "check"}                                   check now
 *   {"cmd": "force", "manifest": "<base64 envelope>"}  a signed release, force: true
 *   {"cmd": "pause" | "resume" | "cancel" | "download-only" | "install", "envelope": "<base64>"}
 *       per-update control: the envelope signs {schema: 1, cmd, device, issued} (modules/control.ts)
 *
 * Whatever does not verify becomes "invalid" with a detail, which the reporter reports as
 * ANNOUNCE_INVALID and otherwise ignores.
 */
import type { CryptoPort, StorePort } from "./ports";
import type { TrustedKey } from "./keys";
import { OtaError, codeOf } from "./errors";
import { fromBase64, utf8Decode, utf8Encode } from "./bytes";
import { verifyManifest } from "./manifest";
import { CONTROL_COMMANDS, verifyControl, type ControlCommand } from "./control";
import { parseJsonBytes } from "./json";

/** A command: {"cmd":"force","manifest":"<base64 of an announcement-sized envelope>"}. */
export const MAX_COMMAND = 12 * 1024;
/** Nesting of a command or an announcement (an envelope given as JSON in a command is 4 deep). */
export const MAX_JSON_DEPTH = 8;

export type DeviceCommand =
  | { kind: "check"; force: boolean; manifest?: Uint8Array }
  | { kind: "control"; cmd: ControlCommand }
  | { kind: "invalid"; detail: string };

function why(e: unknown): string {
  return `${codeOf(e)}${e instanceof OtaError && e.detail ? ` (${e.detail})` : ""}`;
}

/** Raises STORE_* only (a control command's replay guard is written to NVS). */
export function decodeCommand(payload: Uint8Array, keys: readonly TrustedKey[], crypto: CryptoPort, deviceId: string, store: StorePort): DeviceCommand {
  let cmd: { cmd?: unknown; manifest?: unknown; envelope?: unknown };
  try {
    cmd = parseJsonBytes(payload, MAX_COMMAND, MAX_JSON_DEPTH, utf8Decode) as typeof cmd;
  } catch (e) {
    const m = (e as Error).message;
    return { kind: "invalid", detail: `cmd: ${m.startsWith("invalid JSON") ? "not JSON" : m}` };
  }
  if (typeof cmd !== "object" || cmd === null) return { kind: "invalid", detail: "cmd: not an object" };
  if (CONTROL_COMMANDS.indexOf(cmd.cmd as ControlCommand) >= 0) {
    if (typeof cmd.envelope !== "string") return { kind: "invalid", detail: `cmd ${String(cmd.cmd)}: unsigned` };
    try {
      const c = verifyControl(fromBase64(cmd.envelope), keys, crypto, deviceId, store);
      if (c.cmd !== cmd.cmd) return { kind: "invalid", detail: `cmd ${String(cmd.cmd)}: the envelope signs ${c.cmd}` };
      return { kind: "control", cmd: c.cmd };
    } catch (e) {
      if (codeOf(e).startsWith("STORE_")) throw e;
      return { kind: "invalid", detail: `cmd ${String(cmd.cmd)}: ${why(e)}` };
    }
  }
  const force = cmd.cmd === "force";
  if (!force && cmd.cmd !== "check") return { kind: "invalid", detail: "cmd: unknown command" };
  if (cmd.manifest === undefined) return { kind: "check", force };
  let env: Uint8Array;
  try {
    env = typeof cmd.manifest === "string" ? fromBase64(cmd.manifest) : utf8Encode(JSON.stringify(cmd.manifest));
  } catch {
    return { kind: "invalid", detail: "cmd: manifest is not base64" };
  }
  try {
    verifyManifest(env, keys, crypto);
  } catch (e) {
    return { kind: "invalid", detail: `cmd: ${why(e)}` };
  }
  return { kind: "check", force, manifest: env };
}
