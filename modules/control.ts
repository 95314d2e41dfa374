/*
 * Per-update control: what the operator (signed commands on devices/<id>/cmd) and the
 * configuration may do to an update once it has started.
 *
 * - DownloadGate sits in the download loop's data path (modules/download.ts): a token bucket
 *   for the bandwidth cap (bytes per second of ClockPort time), and pause / cancel, which end
 *   the attempt in flight at once (the connection is closed: no TLS heap held while paused).
 *   A pause is not a failed attempt; the byte count is journaled and a resume continues from
 *   it with a Range request, after a reboot too.
 * - Signed control commands: the payload {schema: 1, cmd, device, issued} in the manifest's
 *   envelope format (modules/manifest.ts), signed by a trusted release key, for this device
 *   only, and newer (`issued`) than the last one accepted, so a recorded command cannot be
 *   replayed.
 */
import type { ClockPort, CryptoPort, StorePort, TimerId } from "./ports";
import { OtaError } from "./errors";
import { parseEnvelope, verifyEnvelopeSignatures, type Envelope } from "./manifest";
import { parseJsonBytes, isPlainObject, own } from "./json";
import { utf8Decode } from "./bytes";
import type { TrustedKey } from "./keys";
import { constant } from "./constant";
import { DOMAINS } from "./nvs-domains";

import type { ControlCommand } from "./features";
import type { DownloadGate as Gate, HaltCode, HaltListener } from "./download";

export type { ControlCommand } from "./features";
export type { HaltCode, HaltListener } from "./download";
export const CONTROL_COMMANDS: readonly ControlCommand[] = constant(["pause", "resume", "cancel", "download-only", "install"]);
/** Every command a device takes on devices/<id>/cmd, each signed the same way: the control commands, "check" and "force". */
export type SignedCommand = ControlCommand | "check" | "force";
export const SIGNED_COMMANDS: readonly SignedCommand[] = constant(["pause", "resume", "cancel", "download-only", "install", "check", "force"]);

/** Bucket depth: one 4 KB block, so a capped download never bursts more than a block ahead. */
const BURST = 4096;

export class DownloadGate implements Gate {
  private mode: "run" | "pause" | "cancel" = "run";
  private tokens = BURST;
  private last: number;
  private wakeTimer: TimerId = 0;
  private haltListeners: HaltListener[] = [];
  private runWaiters: Array<(go: boolean) => void> = [];

  /** `maxBytesPerSec` 0 = no cap. */
  constructor(private readonly clock: ClockPort, private cap = 0) {
    this.last = clock.now();
  }

  get bytesPerSec(): number {
    return this.cap;
  }

  setCap(bytesPerSec: number): void {
    this.cap = bytesPerSec;
  }

  /** Bytes the data path may read now (Infinity when uncapped). */
  allowance(): number {
    if (this.cap <= 0) return Infinity;
    const now = this.clock.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.last) * this.cap) / 1000);
    this.last = now;
    return Math.floor(this.tokens);
  }

  consumed(n: number): void {
    if (this.cap > 0) this.tokens -= n;
  }

  /** Call `fn` once a block's worth of bytes may be read again (one pending wake at a time). */
  wake(fn: () => void): void {
    if (this.wakeTimer) return;
    const need = Math.max(1, BURST - this.allowance());
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = 0;
      fn();
    }, Math.ceil((need * 1000) / this.cap));
  }

  /** The reason the data path must stop, if any. */
  halted(): HaltCode | undefined {
    return this.mode === "pause" ? "CONTROL_PAUSED" : this.mode === "cancel" ? "CONTROL_CANCELLED" : undefined;
  }

  /** The attempt in flight (or a backoff wait) registers here to be ended by pause/cancel (an object: no closure made). */
  watch(l: HaltListener): void {
    this.haltListeners.push(l);
  }

  unwatch(l: HaltListener): void {
    const i = this.haltListeners.indexOf(l);
    if (i >= 0) this.haltListeners.splice(i, 1);
  }

  /** Resolves true on resume, false on cancel (at once when running). */
  whenRunnable(): Promise<boolean> {
    if (this.mode !== "pause") return Promise.resolve(this.mode === "run");
    return new Promise((resolve) => this.runWaiters.push(resolve));
  }

  pause(): void {
    if (this.mode !== "run") return;
    this.mode = "pause";
    this.halt("CONTROL_PAUSED");
  }

  resume(): void {
    if (this.mode !== "pause") return;
    this.mode = "run";
    this.tokens = BURST;
    this.last = this.clock.now();
    for (const w of this.runWaiters.splice(0)) w(true);
  }

  cancel(): void {
    if (this.mode === "cancel") return;
    this.mode = "cancel";
    this.halt("CONTROL_CANCELLED");
    for (const w of this.runWaiters.splice(0)) w(false);
  }

  close(): void {
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = 0;
  }

  private halt(code: HaltCode): void {
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = 0;
    for (const l of this.haltListeners.slice()) l.halted(code);
  }
}

export interface SignedControl {
  cmd: SignedCommand;
  device: string;
  /** Controller wall-clock ms: strictly increasing per device. */
  issued: number;
}

/** NVS domain "xsota.ctl" (modules/nvs-domains.ts; firmware before it used "ctl": copied when the journal opens, dropped at the commit). */
const DOMAIN = DOMAINS.control;

/**
 * A control command's envelope -> the command, when it is signed by a trusted key, addressed to
 * `deviceId`, newer than the last one accepted, and (when `expected` is given) the command the
 * message named; only then is its `issued` recorded in NVS, so a refused message never uses up a
 * signed command (one delivered first under another name would make the real one a "replay").
 * Throws MANIFEST_* (shape), SIG_* (signature), ANNOUNCE_INVALID (another device, a replay, an
 * unknown command, another command than `expected`).
 */
export function verifyControl(envelope: Uint8Array, keys: readonly TrustedKey[], crypto: CryptoPort, deviceId: string, store: StorePort, expected?: SignedCommand, verifySignatures?: (env: Envelope) => void): SignedControl {
  const env = parseEnvelope(envelope);
  // roles mode: the commands role's threshold (modules/roles.ts verifyRole)
  if (verifySignatures) verifySignatures(env);
  else verifyEnvelopeSignatures(env, keys, crypto);
  let doc: unknown;
  try {
    doc = parseJsonBytes(env.payload, 1024, 2, utf8Decode);
  } catch (e) {
    throw new OtaError("MANIFEST_SYNTAX", `control: ${(e as Error).message}`);
  }
  if (!isPlainObject(doc) || own(doc, "schema") !== 1) throw new OtaError("MANIFEST_FIELD", "control: expected {schema: 1, cmd, device, issued}");
  const cmd = own(doc, "cmd");
  const device = own(doc, "device");
  const issued = own(doc, "issued");
  if (typeof cmd !== "string" || SIGNED_COMMANDS.indexOf(cmd as SignedCommand) < 0) throw new OtaError("ANNOUNCE_INVALID", `control: unknown command ${String(cmd)}`);
  if (device !== deviceId) throw new OtaError("ANNOUNCE_INVALID", `control: addressed to ${String(device)}`);
  if (typeof issued !== "number" || !Number.isInteger(issued) || issued <= 0) throw new OtaError("MANIFEST_FIELD", "control: issued must be a positive integer");
  const last = Number(store.get(DOMAIN, "issued") ?? 0) || 0;
  if (issued <= last) throw new OtaError("ANNOUNCE_INVALID", `control: replayed (issued ${issued} <= ${last})`);
  if (expected !== undefined && cmd !== expected) throw new OtaError("ANNOUNCE_INVALID", `control: the envelope signs ${cmd}, not ${expected}`);
  // A string: ms since the epoch do not fit NVS's 32-bit integers.
  store.set(DOMAIN, "issued", String(issued));
  return { cmd: cmd as SignedCommand, device, issued };
}

/** "download-only" is held in NVS until an install: it applies to the update in flight or the next one. */
export function holdForInstall(store: StorePort): boolean {
  return store.get(DOMAIN, "hold") === 1;
}

export function setHoldForInstall(store: StorePort, hold: boolean): void {
  if (hold) store.set(DOMAIN, "hold", 1);
  else store.delete(DOMAIN, "hold");
}
