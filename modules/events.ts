/*
 * Audit events: every state transition of the agent is one of these. They are journaled in
 * the persistent outbox before they are sent, carry a per-device sequence number, and are
 * what the fleet controller's audit log stores.
 */
import type { ErrorCode } from "./errors";

export type AgentState =
  | "idle"
  | "checking"
  | "downloading"
  | "verifying"
  | "installing"
  | "rebooting"
  | "confirming"
  | "committed"
  | "failed"
  | "rolled-back"
  | "refused"
  // Per-update control (modules/control.ts): waiting states, and the operator's cancel.
  | "paused"
  | "awaiting-install"
  | "awaiting-reboot"
  | "cancelled";

export interface AuditEvent {
  /** Per-device sequence number, strictly increasing across reboots (stored in NVS). */
  seq: number;
  /** Device wall-clock ms (0 when the clock is not set). */
  time: number;
  /** Monotonic ms since boot. */
  uptime: number;
  state: AgentState;
  /** Running version when the event was made. */
  from: string;
  /** Target version, when there is one. */
  to?: string;
  /** Download progress in percent, on "downloading" milestones. */
  progress?: number;
  code?: ErrorCode;
  detail?: string;
  /** Release rollout id, when the event belongs to a release. */
  rollout?: string;
}

/** What the agent tells its observers (the reporter, the CLI's progress bar, tests). */
export interface AgentObserver {
  /** A state transition (already stored in the outbox when this is called). */
  onEvent?(event: AuditEvent): void;
  /** Bytes of the image written so far; called per chunk, keep it cheap. */
  onProgress?(written: number, total: number): void;
}
