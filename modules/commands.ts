/*
 * devices/<id>/cmd, decoded and verified (the reporter, modules/reporter.ts, acts on the result).
 * Every command is signed: its envelope (modules/control.ts) signs {schema: 1, cmd, device,
 * issued} for this device alone, newer than the last one it accepted (no replay, no other device):
 *
 *   {"cmd": "check", "envelope": "<base64>"}                                  check now
 *   {"cmd": "force", "envelope": "<base64>", "manifest": "<base64 envelope>"}  a signed release
 *       whose own signed fields say force: true (a critical patch)
 *   {"cmd": "pause" | "resume" | "cancel" | "download-only" | "install", "envelope": "<base64>"}
 *       per-update control
 *
 * Whatever does not verify (an unsigned command among them) becomes "invalid" with a detail,
 * which the reporter reports as ANNOUNCE_INVALID and otherwise ignores.
 */
import type { CryptoPort, StorePort } from "./ports";
import type { TrustedKey } from "./keys";
import { OtaError, codeOf } from "./errors";
import { fromBase64, utf8Decode, utf8Encode } from "./bytes";
import { verifyManifest } from "./manifest";
import type { ReleaseTrust } from "./features";
import { SIGNED_COMMANDS, verifyControl, type ControlCommand, type SignedCommand } from "./control";
import { jsonRefusal, parseJsonBytes } from "./json";

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
export function decodeCommand(payload: Uint8Array, keys: readonly TrustedKey[], crypto: CryptoPort, deviceId: string, store: StorePort, trust?: ReleaseTrust): DeviceCommand {
  let cmd: { cmd?: unknown; manifest?: unknown; envelope?: unknown };
  try {
    cmd = parseJsonBytes(payload, MAX_COMMAND, MAX_JSON_DEPTH, utf8Decode) as typeof cmd;
  } catch (e) {
    return { kind: "invalid", detail: `cmd: ${jsonRefusal(e)}` };
  }
  if (typeof cmd !== "object" || cmd === null) return { kind: "invalid", detail: "cmd: not an object" };
  const name = cmd.cmd as SignedCommand;
  if (SIGNED_COMMANDS.indexOf(name) < 0) return { kind: "invalid", detail: "cmd: unknown command" };
  if (typeof cmd.envelope !== "string") return { kind: "invalid", detail: `cmd ${name}: unsigned` };
  // the release first (no NVS write for a command whose manifest does not verify), then the envelope
  let manifest: Uint8Array | undefined;
  if (name === "force") {
    if (cmd.manifest === undefined) return { kind: "invalid", detail: "cmd force: no manifest" };
    try {
      manifest = typeof cmd.manifest === "string" ? fromBase64(cmd.manifest) : utf8Encode(JSON.stringify(cmd.manifest));
    } catch {
      return { kind: "invalid", detail: "cmd force: manifest is not base64" };
    }
    try {
      // the release's own signed fields must ask for it: the command's name is not trusted to
      if ((trust ? trust.verifyRelease(manifest) : verifyManifest(manifest, keys, crypto).manifest).force !== true) return { kind: "invalid", detail: "cmd force: the manifest is not signed with force: true" };
    } catch (e) {
      return { kind: "invalid", detail: `cmd force: ${why(e)}` };
    }
  }
  try {
    // `name` expected: an envelope signing another command is refused before its `issued` is recorded
    verifyControl(fromBase64(cmd.envelope), keys, crypto, deviceId, store, name, trust ? (env) => trust.verifyCommand(env) : undefined);
  } catch (e) {
    if (codeOf(e).startsWith("STORE_")) throw e;
    return { kind: "invalid", detail: `cmd ${name}: ${why(e)}` };
  }
  if (name === "check") return { kind: "check", force: false };
  if (name === "force") return { kind: "check", force: true, manifest: manifest! };
  return { kind: "control", cmd: name as ControlCommand };
}
