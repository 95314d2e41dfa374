/*
 * The controller's side of per-update control (the device's is modules/control.ts):
 *
 * - signControl / controlMessage: {schema: 1, cmd, device, issued} signed with the release key
 *   in the manifest's envelope format, sent as {"cmd": "<cmd>", "envelope": "<base64>"} on
 *   devices/<id>/cmd. `issued` grows strictly (the device refuses anything not newer).
 * - ControlTracker: which devices are paused, awaiting an install or awaiting a reboot, from
 *   their audit events (the newest seq per device wins), for the fleet view and `status`.
 *   It starts from the audit log (`load`), so a restarted controller and `xsota fleet status`,
 *   which runs without one, show what the devices were last seen doing.
 */
import type { AuditEvent } from "../../modules/events";
import type { ControlCommand, SignedCommand } from "../../modules/control";
import { CONTROL_COMMANDS } from "../../modules/control";
import { OtaError } from "../../modules/errors";
import { toBase64, utf8Encode } from "../../modules/bytes";
import { signPayload } from "../release/manifest-tool";
import type { SigningKey } from "../release/keys";
import type { Awaitable } from "./audit-store";

export type { ControlCommand } from "../../modules/control";

/** Throws USAGE for an unknown command. */
export function parseControlCommand(text: string): ControlCommand {
  if (CONTROL_COMMANDS.indexOf(text as ControlCommand) < 0) throw new OtaError("USAGE", `unknown control command '${text}' (${CONTROL_COMMANDS.join(", ")})`);
  return text as ControlCommand;
}

export function signControl(key: SigningKey, cmd: SignedCommand, device: string, issued: number): Uint8Array {
  return signPayload(utf8Encode(JSON.stringify({ schema: 1, cmd, device, issued })), [key]);
}

export function controlMessage(key: SigningKey, cmd: SignedCommand, device: string, issued: number, extra: { manifest?: string } = {}): string {
  return JSON.stringify({ cmd, envelope: toBase64(signControl(key, cmd, device, issued)), ...extra });
}

/** Strictly increasing wall-clock ms, one per command sent. */
export class IssueClock {
  private last = 0;
  constructor(private readonly wallTime: () => number) {}
  next(): number {
    this.last = Math.max(this.wallTime(), this.last + 1);
    return this.last;
  }
}

export type Activity = "paused" | "awaiting-install" | "awaiting-reboot";
const ACTIVITIES: readonly string[] = ["paused", "awaiting-install", "awaiting-reboot"];

export interface ControlSnapshot {
  paused: string[];
  awaitingInstall: string[];
  awaitingReboot: string[];
}

export class ControlTracker {
  private readonly now = new Map<string, { seq: number; activity: Activity | undefined }>();

  /** Each device's newest logged event, as if it had just arrived. */
  async load(log: { latestEvents(): Awaitable<{ device: string; seq: number; state: string }[]> }): Promise<this> {
    for (const r of await log.latestEvents()) this.note(r.device, r);
    return this;
  }

  /** An audit event arrived (in any order: the newest seq decides). */
  note(device: string, e: Pick<AuditEvent, "seq"> & { state: string }): void {
    const cur = this.now.get(device);
    if (cur && cur.seq >= e.seq) return;
    this.now.set(device, { seq: e.seq, activity: ACTIVITIES.indexOf(e.state) >= 0 ? (e.state as Activity) : undefined });
  }

  activity(device: string): Activity | undefined {
    return this.now.get(device)?.activity;
  }

  snapshot(): ControlSnapshot {
    const s: ControlSnapshot = { paused: [], awaitingInstall: [], awaitingReboot: [] };
    for (const [id, v] of this.now) {
      if (v.activity === "paused") s.paused.push(id);
      else if (v.activity === "awaiting-install") s.awaitingInstall.push(id);
      else if (v.activity === "awaiting-reboot") s.awaitingReboot.push(id);
    }
    for (const list of [s.paused, s.awaitingInstall, s.awaitingReboot]) list.sort();
    return s;
  }
}
