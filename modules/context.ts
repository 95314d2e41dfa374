/*
 * What the agent's parts share for one boot: the ports, the configuration, the stores, the
 * running image's identity, and the one way to record a transition.
 */
import type { Ports } from "./ports";
import type { AppConfig } from "./config";
import type { AgentState, AuditEvent } from "./events";
import type { JournalStore } from "./journal";
import type { BootControlPort } from "./ports";
import type { DiagnosticCheck, NetworkSignal } from "./diagnostics";

export interface RunningInfo {
  version: string;
  secureVersion: number;
  project: string;
  slot: number;
}

export interface AgentContext {
  ports: Ports;
  config: AppConfig;
  journal: JournalStore;
  /** Ports.boot, or modules/bootctl.ts's FlashBootControl over the flash port. */
  boot: BootControlPort;
  running: RunningInfo;
  checks: readonly DiagnosticCheck[];
  /** Whether (and since when) the network is up: the network checks' window starts then. */
  network: NetworkSignal;
  /** This boot's hold on a release rolled back for a network cause: not tried before `until` (uptime ms). */
  hold?: { sha256: string; until: number };
  /** The one 4 KB buffer of the update path (download, verification, validation). */
  scratch: Uint8Array;
  /** Record a transition: outbox first (persistent), then observers. Returns the stored event. */
  emit(state: AgentState, fields?: Partial<AuditEvent>): AuditEvent;
}
