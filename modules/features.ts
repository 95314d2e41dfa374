/*
 * The optional features of the agent, each a separate include of the component (issue 28,
 * "Features by include"): an app that includes only the core (manifest.json) links none of their
 * bytecode. The core never imports a feature's module: the API (src/component/xsota.ts) imports
 * the feature's specifier ("xsota/feature/fleet"...), which the core's manifest maps to a stub
 * exporting null and the feature's manifest (features/<name>/manifest.json) to the real object
 * (its "~" drops the stub, so the order of the includes does not matter); the simulator and the
 * tests pass the real ones here explicitly (host-sim/engines/firmware.ts). Types only: nothing is linked.
 */
import type { Manifest } from "./manifest-fields";
import type { Envelope } from "./manifest";
import type { CryptoPort, FlashPartition, FlashPort, MqttPort, Ports } from "./ports";
import type { SlotWriter } from "./download";
import type { UpdateSlot } from "./install";
import type { AppConfig } from "./config";
import type { Outbox } from "./outbox";
import type { AgentState, AuditEvent } from "./events";
import type { DownloadGate } from "./download";
import type { Journal } from "./journal";
import type { AgentContext } from "./context";
import type { ErrorCode } from "./errors";

/** What the reporter needs of modules/agent.ts's Agent. */
export interface ReporterAgent {
  readonly running: { version: string; secureVersion: number; slot: number; project?: string };
  check(options?: { force?: boolean; manifest?: Uint8Array }): Promise<unknown>;
  /** A verified per-update control command (modules/agent.ts Agent.command). */
  command?(cmd: ControlCommand): unknown;
  /**
   * Roles mode (config.root): verifies a release as the agent does (a rollout document + release,
   * modules/roles.ts) and names the commands role's keys. Undefined: the trustedKeys verify both.
   */
  readonly trust?: ReleaseTrust;
}

/** How a release and a control command are verified in roles mode (modules/agent.ts). */
export interface ReleaseTrust {
  verifyRelease(envelope: Uint8Array): Manifest;
  /** Throws ROLE_THRESHOLD unless the commands role's threshold signed it. */
  verifyCommand(env: Envelope): void;
}

export interface Reporter {
  /** The agent stored a new event in the outbox: send it. */
  onEvent(event: AuditEvent): void;
  readonly connected: boolean;
  /**
   * Resolves once every event in the outbox is acknowledged, the link is down, or `maxMs` have
   * passed: the agent awaits it before a restart, so that a restart does not cut the PUBACKs
   * of the events it just sent (they would all be sent again after the boot).
   */
  drain(maxMs: number): Promise<void>;
  /** Orderly shutdown (DISCONNECT: the will does not fire). Safe twice. */
  close(): void;
}

/** The fleet reporter over MQTT (modules/reporter.ts): version and state, the outbox, announcements, commands. */
export interface FleetFeature {
  startReporter(ports: Ports, config: AppConfig, agent: ReporterAgent, outbox: Outbox): Reporter;
  /** The device's MQTT port (src/mqtt.ts), for the platform's ports; the simulator brings its own. */
  mqtt?(options: { ca: ArrayBuffer }): MqttPort;
}

/** The slot a patch's bytes go into (modules/delta-download.ts PatchSlot): the patched image into the update slot. */
export interface PatchWriter extends SlotWriter {
  /** SHA-256 (hex) of the output, once complete (else ""). */
  readonly outputSha256: string;
}

export interface PatchSlotOptions {
  slot: UpdateSlot;
  /** The release's image size (the manifest's). */
  imageSize: number;
  /** Bytes of the running image the patch reads as its base. */
  baseSize: number;
  flash: FlashPort;
  crypto: CryptoPort;
  /** Check the first output block before it is written; throws IMAGE_* codes. */
  checkStart(first: Uint8Array): void;
}

/** Delta updates (modules/delta-download.ts, modules/delta/): a release's patch against the running image. */
export interface DeltaFeature {
  /** SHA-256 (hex) of the first `size` bytes of `part` (is the running image the patch's base?). Throws FLASH_*. */
  sha256Prefix(part: FlashPartition, size: number, crypto: CryptoPort, scratch: Uint8Array): string;
  /** Throws DELTA_BASE (the base is larger than the running slot). */
  patchSlot(options: PatchSlotOptions): PatchWriter;
}

/** A signed per-update control command (modules/control.ts verifyControl). */
export type ControlCommand = "pause" | "resume" | "cancel" | "download-only" | "install";

export interface ControlResult {
  /** The command applied; otherwise `code` says why not (reported as a refused event). */
  ok: boolean;
  state: AgentState;
  code?: ErrorCode;
}

/** The agent's side of per-update control (modules/agent-control.ts UpdateControl). */
export interface UpdateControlPort {
  /** A new update starts: the gate of its download (the lower of the device's and the manifest's caps). */
  begin(j: Journal, manifestCap?: number): DownloadGate;
  /** The update is over. */
  end(): void;
  /** Apply a verified control command. Raises STORE_* only. */
  command(cmd: ControlCommand): ControlResult;
  /** download-only is held (NVS): a release outside the window is downloaded anyway, and waits. */
  holdsForInstall(): boolean;
  /** After verification: wait for an install command or the window when download-only is held. Resolves false on cancel. */
  holdBeforeInstall(j: Journal): Promise<boolean>;
}

/**
 * Update control (modules/control.ts, modules/agent-control.ts): the bandwidth cap (the device's
 * download.maxBytesPerSec and the manifest's), pause / resume / cancel / download-only / install.
 */
export interface ControlFeature {
  create(ctx: AgentContext): UpdateControlPort;
}

/** What the app and the agent are given of the optional features; absent or null: not included. */
export interface Features {
  fleet?: FleetFeature | null;
  delta?: DeltaFeature | null;
  control?: ControlFeature | null;
}
