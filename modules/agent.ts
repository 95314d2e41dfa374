/*
 * The update agent: idle -> checking -> downloading -> verifying -> installing -> rebooting
 * -> confirming -> committed, with failed / rolled-back / refused exits. Every transition is
 * journaled (modules/journal.ts) before the next side effect and appended to the outbox.
 * The running firmware is never touched by a failed update: only "nextota" and, after full
 * verification, otadata are written.
 *
 * A release whose delta has the running image as its base comes as a patch (modules/delta-download.ts),
 * verified exactly as a full image; a failed patch falls back to the full image once. Deltas are an
 * optional feature (modules/features.ts): without it, the full image is always fetched.
 *
 * An esp_encrypted_img release (issue 31) is decrypted while it streams (modules/enc-slot.ts) with
 * the device's key from the configuration or NVS (never the manifest), then verified as a plain one.
 *
 * "from" in events is the version the update started from (the running one before the
 * reboot), "to" the release's version.
 */
import type { ClockPort, CryptoPort, HttpPort, Ports } from "./ports";
import type { AgentObserver, AgentState, AuditEvent } from "./events";
import { parseConfig, type AppConfig, type DownloadConfig, type RetryConfig } from "./config";
import { Outbox } from "./outbox";
import { JournalStore, type Journal } from "./journal";
import { FlashBootControl } from "./bootctl";
import { OtaState } from "./otadata";
import { parseImageStart, APP_DESC_OFFSET, APP_DESC_SIZE } from "./image";
import { keyFromConfig, type TrustedKey } from "./keys";
import { verifyManifest, MANIFEST_LIMITS, type Manifest, type ManifestDelta } from "./manifest";
import { OtaError, codeOf, type ErrorCode } from "./errors";
import { decide, chooseDelta } from "./policy";
import { checkFreshness, contentDigest } from "./freshness";
import { ROOT_LIMITS, RootStore, anchoredHttp, anchoredMqtt, missingRoots, verifyBundle, verifyRole } from "./roles";
import type { ControlCommand, ControlResult, DeltaFeature, Features, PatchWriter, ReleaseTrust, UpdateControlPort } from "./features";
import { UpdateSlot } from "./install";
import { Downloader, BLOCK, type DownloadDeps, type DownloadGate, type SlotWriter } from "./download";
import { RedirectingHttp } from "./redirect";
import { checkImageStart, verifySlot } from "./verify";
import { onBoot, releaseFields, type BootOutcome } from "./confirm";
import { seedOf, seededRandom } from "./backoff";
import { fetchSmall, resolveUrl } from "./fetch";
import { toHex } from "./bytes";
import { NetworkSignal, type DiagnosticCheck } from "./diagnostics";
import type { AgentContext, RunningInfo } from "./context";
import { holdBeforeReboot } from "./reboot-hold";
import { constant } from "./constant";
import { EncSlot } from "./enc-slot";
import { deviceKeyOf, type DeviceKey } from "./enc-key";

export type { BootOutcome } from "./confirm";
export type { RunningInfo } from "./context";

export interface CheckOptions {
  /** A critical patch: overrides the maintenance window, the rollout percentage and the attempt cap. */
  force?: boolean;
  /** Envelope bytes already in hand (an MQTT announcement), instead of fetching manifestUrl. */
  manifest?: Uint8Array;
}

export interface CheckOutcome {
  state: AgentState;
  code?: ErrorCode;
  version?: string;
}

const MILESTONES = constant([25, 50, 75, 100]);

/** Read the running image's esp_app_desc_t. Throws IMAGE_* codes, FLASH_NO_PARTITION. */
export function readRunning(ports: Ports): RunningInfo {
  const part = ports.flash.open("running");
  const first = new Uint8Array(APP_DESC_OFFSET + APP_DESC_SIZE + 8);
  part.read(0, first);
  const { appDesc } = parseImageStart(first);
  return { version: appDesc.version, secureVersion: appDesc.secureVersion, project: appDesc.projectName, slot: ports.flash.slots().running };
}

export class Agent {
  readonly outbox: Outbox;
  /**
   * Awaited after the "rebooting" event and before system.restart() (the app sets it to the
   * reporter's bounded drain, so the update's events are acknowledged before the link drops).
   * Otadata already points at the new image: a power cut while it runs boots that image too.
   */
  beforeRestart: (() => Promise<void>) | undefined;
  readonly running: RunningInfo;
  readonly config: AppConfig;
  private readonly ctx: AgentContext;
  private readonly keys: TrustedKey[];
  private readonly imageKeys: TrustedKey[];
  /** Roles mode (config.root): the root of trust and how releases and commands are verified. */
  readonly trust: ReleaseTrust | undefined;
  /** Roles mode: the device's root (modules/roles.ts). */
  private readonly roots: RootStore | undefined;
  private readonly random: () => number;
  /** The delta feature, when included. */
  private readonly delta: DeltaFeature | null;
  /** The esp_encrypted_img device key, read on first use (an HMAC key costs 2048 HMACs). */
  private decryptKey: DeviceKey | undefined;
  /** Pause / resume / cancel / download-only / install, the bandwidth cap (modules/agent-control.ts), when the control feature is included. */
  readonly control: UpdateControlPort | undefined;
  /** Whether a restart is acceptable now (AppExtra.rebootWhen; modules/reboot-hold.ts). */
  rebootWhen: (() => boolean) | undefined;
  private current: AgentState = "idle";
  private busy = false;
  private closed = false;

  /**
   * The ports as the agent uses them: HTTP through the configured redirects and, in roles mode,
   * HTTP and MQTT with the current root's TLS anchors. The fleet reporter connects through these.
   */
  readonly ports: Ports;

  /** `waitForNetwork` overrides config.diagnostics.waitForNetwork (AppExtra.network). */
  constructor(portsIn: Ports, config: AppConfig | unknown, private readonly observer: AgentObserver = {}, options: { checks?: readonly DiagnosticCheck[]; outbox?: Outbox; waitForNetwork?: boolean; features?: Features } = {}) {
    this.config = parseConfig(config);
    this.delta = options.features?.delta ?? null;
    // Redirects are followed here, once for every binding (the manifest and the image).
    // Roles mode: the root's TLS anchors on every request (CA rollover), under the redirects.
    const roots = (this.roots = this.config.root !== undefined ? new RootStore(portsIn.store, this.config.root, portsIn.crypto) : undefined);
    const ports: Ports = { ...portsIn, http: new RedirectingHttp(roots ? anchoredHttp(portsIn.http, roots) : portsIn.http, this.config.redirects) };
    if (roots && portsIn.mqtt) ports.mqtt = anchoredMqtt(portsIn.mqtt, roots);
    this.ports = ports;
    const crypto = ports.crypto;
    this.keys = this.config.trustedKeys.map((k) => keyFromConfig(k, crypto));
    // The manifest keys sign images too unless imageKeys names others (one parsed copy, not two).
    this.imageKeys = this.config.imageKeys ? this.config.imageKeys.map((k) => keyFromConfig(k, crypto)) : this.keys;
    if (roots) {
      this.trust = {
        verifyRelease: (envelope) => verifyBundle(envelope, roots, crypto, ports.clock.wallTime()).manifest,
        verifyCommand: (env) => void verifyRole(env, roots.current(), "commands", crypto),
      };
    } else this.trust = undefined;
    this.outbox = options.outbox ?? new Outbox(ports.store, { capacity: this.config.outboxCapacity });
    this.running = readRunning(ports);
    this.random = seededRandom(seedOf(ports.system.deviceId()));
    const scratch = new Uint8Array(BLOCK);
    this.ctx = {
      ports,
      config: this.config,
      journal: new JournalStore(ports.store),
      boot: ports.boot ?? new FlashBootControl(ports.flash, crypto, () => ports.system.chipId(), scratch),
      running: this.running,
      checks: options.checks ?? [],
      network: new NetworkSignal(ports.clock, options.waitForNetwork ?? this.config.diagnostics.waitForNetwork),
      scratch,
      emit: (state, fields) => this.emit(state, fields),
    };
    const control = options.features?.control;
    this.control = control ? control.create(this.ctx) : undefined;
  }

  /** Apply a verified control command (modules/control.ts verifyControl). Raises STORE_* only. */
  command(cmd: ControlCommand): ControlResult {
    if (this.control) return this.control.command(cmd);
    this.ports.system.log(`ota: ${cmd}: update control is not included (features/control/manifest.json)`);
    return { ok: false, state: this.current, code: "CONTROL_STATE" };
  }

  get state(): AgentState {
    return this.current;
  }

  /**
   * The network is up (the app's own Wi-Fi, Ethernet, provisioning): the self-test's network
   * checks start their window now. Only needed with waitForNetwork; idempotent.
   */
  networkUp(): void {
    this.ctx.network.signal();
  }

  get networkIsUp(): boolean {
    return this.ctx.network.up;
  }

  /** Held after a network-caused rollback: this boot's hold (uptime), else the stored one (wall time, when the clock is set). */
  private held(sha256: string): boolean {
    const hold = this.ctx.hold;
    if (hold && hold.sha256 === sha256) return this.ports.clock.now() < hold.until;
    const wall = this.ports.clock.wallTime();
    return wall > 0 && wall < this.ctx.journal.netHold(sha256);
  }

  /** The anti-rollback floor in force. */
  get floor(): number {
    return this.ctx.journal.floor();
  }

  /** Confirm or roll back after a reboot, report what happened. Throws FLASH_* / STORE_* only. */
  boot(): Promise<BootOutcome> {
    return onBoot(this.ctx).then((out) => {
      this.current = out.state === "committed" || out.state === "rolled-back" || out.state === "failed" ? out.state : "idle";
      return out;
    });
  }

  /**
   * Fetch (or take) a manifest, decide, and update. Resolves with the final state; a state of
   * "rebooting" means system.restart() was called. Raises nothing for update failures (they
   * are in the outcome and the outbox); FLASH_* / STORE_* when the hardware fails.
   *
   * One promise for the whole check, settled by checked(): no async frame and no promise chain is
   * held across the download (on the chip each costs RAM for as long as the download runs).
   */
  check(options: CheckOptions = {}): Promise<CheckOutcome> {
    if (this.closed) return Promise.resolve({ state: this.current, code: "OTADATA_STATE" });
    if (this.busy) return Promise.resolve({ state: this.current, code: "POLICY_BUSY" });
    this.busy = true;
    return new Promise<CheckOutcome>((resolve, reject) => {
      this.resolveCheck = resolve;
      this.rejectCheck = reject;
      this.current = "checking";
      if (options.manifest) return this.checkEnvelope(options.manifest, options);
      let fetching: Promise<Uint8Array>;
      try {
        // roles mode: a bundle carrying a root chain may be larger than a manifest (ROOT_LIMITS)
        fetching = fetchSmall(this.ports, this.config.manifestUrl, this.trust ? ROOT_LIMITS.bundleBytes : MANIFEST_LIMITS.envelopeBytes, this.config.download.stallMs);
      } catch (e) {
        return this.manifestFailed(e);
      }
      fetching.then((envelope) => this.checkEnvelope(envelope, options), (e: unknown) => this.manifestFailed(e));
    });
  }

  private resolveCheck: ((out: CheckOutcome) => void) | undefined;
  private rejectCheck: ((e: unknown) => void) | undefined;

  /** The check is over: `out`, or the hardware error that ended it. */
  private checked(out: CheckOutcome | undefined, error?: unknown): void {
    const resolve = this.resolveCheck, reject = this.rejectCheck;
    this.resolveCheck = this.rejectCheck = undefined;
    this.busy = false;
    if (out) resolve!(out);
    else reject!(error);
  }

  private manifestFailed(e: unknown): void {
    let out: CheckOutcome;
    try {
      out = this.report("failed", "manifest", codeOf(e), { detail: e instanceof OtaError ? e.detail : String(e) });
    } catch (e2) {
      return this.checked(undefined, e2);
    }
    this.checked(out);
  }

  private checkEnvelope(envelope: Uint8Array, options: CheckOptions): void {
    // Roles mode: roots the bundle's chain skips are fetched first, one by one (root.<n>.json beside
    // the manifest); one that cannot be fetched or taken is logged, and the bundle is then refused
    // for the gap (ROOT_VERSION) by verifyBundle.
    const roots = this.roots;
    let missing: number[] = [];
    try {
      if (roots) missing = missingRoots(envelope, roots.current().version);
    } catch {
      missing = [];
    }
    if (roots && missing.length) {
      let walk: Promise<unknown> = Promise.resolve();
      for (const n of missing) {
        walk = walk.then(() => fetchSmall(this.ports, resolveUrl(this.config.manifestUrl, `root.${n}.json`), ROOT_LIMITS.envelopeBytes, this.config.download.stallMs)).then((bytes) => {
          roots.rotate([bytes], this.ports.clock.wallTime());
          this.ports.system.log(`ota root ${n} taken (root.${n}.json)`);
        });
      }
      walk.then(undefined, (e: unknown) => this.ports.system.log(`ota root walk stopped: ${codeOf(e)}${e instanceof OtaError && e.detail ? ` ${e.detail}` : ""}`)).then(() => this.decideEnvelope(envelope, options));
      return;
    }
    this.decideEnvelope(envelope, options);
  }

  private decideEnvelope(envelope: Uint8Array, options: CheckOptions): void {
    let out: CheckOutcome | undefined;
    try {
      out = this.decideRelease(envelope, options);
    } catch (e) {
      return this.checked(undefined, e);
    }
    if (out) this.checked(out);
  }

  close(): void {
    this.closed = true;
  }

  private emit(state: AgentState, fields: Partial<AuditEvent> = {}): AuditEvent {
    this.current = state;
    const clock = this.ports.clock;
    const e: Omit<AuditEvent, "seq"> = { time: clock.wallTime(), uptime: clock.now(), state, from: this.running.version, ...fields };
    const stored = this.outbox.append(e);
    this.ports.system.log(`ota ${state}${e.to ? ` ${e.from} -> ${e.to}` : ""}${e.progress !== undefined ? ` ${e.progress}%` : ""}${e.code ? ` ${e.code}` : ""}${e.detail ? `: ${e.detail}` : ""}`);
    if (this.observer.onEvent) this.observer.onEvent(stored);
    return stored;
  }

  /** Report a refusal or failure once per (release, code); the state is set either way. */
  private report(state: AgentState, key: string, code: ErrorCode, fields: Partial<AuditEvent>): CheckOutcome {
    if (this.ctx.journal.alreadySaid(key, code)) {
      this.current = state;
      this.ports.system.log(`ota ${state} ${fields.to ? `${this.running.version} -> ${fields.to} ` : ""}${code} (reported before)`);
    } else this.emit(state, { ...fields, code });
    const out: CheckOutcome = { state, code };
    if (fields.to !== undefined) out.version = fields.to;
    return out;
  }

  /** Verify and decide; returns the outcome of a refusal, or undefined once the update has started (it ends in checked()). */
  private decideRelease(envelope: Uint8Array, options: CheckOptions): CheckOutcome | undefined {
    let manifest: Manifest;
    try {
      manifest = this.trust ? this.trust.verifyRelease(envelope) : verifyManifest(envelope, this.keys, this.ports.crypto).manifest;
    } catch (e) {
      const h = this.ports.crypto.sha256();
      h.write(envelope);
      return this.report("refused", toHex(h.close()), codeOf(e), { detail: e instanceof OtaError ? e.detail : String(e) });
    }
    const release = { to: manifest.version, ...(manifest.rollout ? { rollout: manifest.rollout.id } : {}) };
    try {
      // A forced manifest (a per-device command, itself replay-guarded) is checked but not recorded:
      // the channel's own announcements, signed before it, stay acceptable.
      checkFreshness({ ...manifest, digest: contentDigest(manifest, this.ports.crypto) }, this.config, this.ports.store, this.ports.clock.wallTime(), options.force !== true);
    } catch (e) {
      if (codeOf(e).startsWith("STORE_")) throw e;
      return this.report("refused", manifest.sha256, codeOf(e), { ...release, detail: e instanceof OtaError ? e.detail : String(e) });
    }
    const url = resolveUrl(this.config.manifestUrl, manifest.url);
    const journal = this.ctx.journal;
    const slots = this.ports.flash.slots();
    const slotSize = this.ports.flash.open("nextota").byteLength;
    let code = /^https:\/\//i.test(url)
      ? decide({
          manifest, config: this.config, running: this.running, pendingVerify: this.ctx.boot.runningState() === OtaState.PENDING_VERIFY,
          floor: journal.floor(), chipId: this.ports.system.chipId(), deviceId: this.ports.system.deviceId(), slotSize,
          wallNow: this.ports.clock.wallTime(), tries: journal.tries(manifest.sha256), rolledBack: journal.isBad(manifest.sha256),
          networkRollbacks: journal.netRollbacks(manifest.sha256), rollbackHold: this.held(manifest.sha256),
          force: options.force === true, crypto: this.ports.crypto,
          canDecrypt: this.ports.crypto.enc !== undefined && (this.config.decryptionKey !== undefined || this.config.decryptionHmacKey !== undefined),
        })
      : "HTTP_INSECURE_URL";
    if (code === "POLICY_NOT_NEWER" && manifest.version === this.running.version) {
      // The steady state (we run this release): nothing to report.
      this.current = "idle";
      this.ports.system.log(`ota idle: running ${manifest.version}, the release at ${this.config.manifestUrl}`);
      return { state: "idle", version: manifest.version };
    }
    // download-only: download now, install in the window (or on command).
    if (code === "POLICY_WINDOW" && this.control && this.control.holdsForInstall()) code = null;
    if (code) return this.report("refused", manifest.sha256, code, { ...release, detail: `${this.running.version} -> ${manifest.version}` });
    if (options.force && journal.tries(manifest.sha256) >= this.config.retry.maxAttempts) journal.setTries(manifest.sha256, 0);

    // A delta only when the running image is its base (hashed here, before anything is written); else the full image.
    const old = journal.load().journal;
    const patchFailed = old !== undefined && old.sha256 === manifest.sha256 && old.noDelta === true;
    let delta: ManifestDelta | undefined;
    const feature = this.delta;
    if (feature && !patchFailed && manifest.deltas && manifest.deltas.length) {
      const running = this.ports.flash.open("running");
      delta = chooseDelta(manifest, this.config, this.running, running.byteLength, (n) => feature.sha256Prefix(running, n, this.ports.crypto, this.ctx.scratch));
    }
    const same = old && old.sha256 === manifest.sha256 && old.targetSlot === slots.next && (old.phase === "downloading" || old.phase === "verifying" || old.phase === "installing" || old.phase === "awaiting-install") &&
      (old.delta?.sha256 ?? "") === (delta?.sha256 ?? "");
    const j: Journal = {
      phase: "downloading", from: this.running.version, fromSlot: slots.running, to: manifest.version, secureVersion: manifest.secureVersion,
      sha256: manifest.sha256, size: manifest.size, url, targetSlot: slots.next, written: same ? old!.written : 0,
    };
    if (delta) {
      j.delta = { url: resolveUrl(this.config.manifestUrl, delta.url), size: delta.size, sha256: delta.sha256, baseSize: delta.from.size };
      if (j.written < j.size) j.written = 0; // a patch restarts from its byte 0 (modules/delta-download.ts)
    }
    if (patchFailed) j.noDelta = true;
    if (manifest.encryption) {
      // Never with a delta (the manifest refuses both: MANIFEST_FIELD). The file restarts from its byte 0 (modules/enc-slot.ts).
      j.enc = { plainSize: manifest.encryption.plainSize, plainSha256: manifest.encryption.plainSha256 };
      if (j.written < j.size) j.written = 0;
    }
    if (manifest.rollout) j.rollout = manifest.rollout.id;
    if (same && old!.etag !== undefined) j.etag = old!.etag;
    if (same && old!.paused) j.paused = true;
    const how = delta ? `delta from ${delta.from.version}: ${delta.size} bytes instead of ${manifest.size}` : "";
    const resume = same && j.written > 0 ? `resume at byte ${j.written}` : "";
    this.emit("checking", releaseFields(j, how || resume ? { detail: [how, resume].filter((x) => x).join("; ") } : {}));
    journal.save(j);
    this.emit("downloading", releaseFields(j, { progress: Math.floor((j.written * 100) / j.size) }));
    this.update(j, manifest.maxBytesPerSec);
    return undefined;
  }

  /** The update is over (checked() follows): the control's gate and timers end with it. */
  private updated(out: CheckOutcome | undefined, error?: unknown): void {
    try {
      if (this.control) this.control.end();
    } catch (e) {
      if (out) return this.checked(undefined, e);
    }
    this.checked(out, error);
  }

  /** Download into the update slot (a callback state machine, UpdateRun), then afterDownload(). Ends in updated(). */
  private update(j: Journal, manifestCap?: number): void {
    const { ports, ctx } = this;
    let run: UpdateRun;
    try {
      const gate = this.control ? this.control.begin(j, manifestCap) : undefined;
      if (!this.control && (manifestCap || this.config.download.maxBytesPerSec)) ports.system.log("ota: a bandwidth cap is set, but update control is not included (features/control/manifest.json): not applied");
      const slot = new UpdateSlot(ports.flash);
      let patch: PatchWriter | undefined;
      let enc: EncSlot | undefined;
      if (j.enc && j.written < j.size) {
        try {
          const cipher = ports.crypto.enc;
          if (!cipher) throw new OtaError("ENC_KEY", "this binding has no ciphers for encrypted images");
          this.decryptKey ??= deviceKeyOf(this.config, ports.crypto);
          if (!this.decryptKey) throw new OtaError("ENC_KEY", "no device key for encrypted images (decryptionKey, decryptionHmacKey)");
          enc = new EncSlot({ slot, plainSize: j.enc.plainSize, plainSha256: j.enc.plainSha256, key: this.decryptKey, crypto: ports.crypto, cipher, checkStart: (first) => run.checkImage(first) });
        } catch (e) {
          return this.endUpdate(j, e);
        }
      }
      try {
        if (j.delta && j.written < j.size) {
          if (!this.delta) throw new OtaError("DELTA_FORMAT", "a journaled patch, but deltas are not included in this firmware");
          patch = this.delta.patchSlot({ slot, imageSize: j.size, baseSize: j.delta.baseSize, flash: ports.flash, crypto: ports.crypto, checkStart: (first) => run.checkImage(first) });
        }
      } catch (e) {
        return this.fallBack(j, e);
      }
      run = new UpdateRun(ctx, j, gate, slot, patch, enc, this.random, this.observer);
      const done = (error: unknown, etag?: string) => this.downloaded(run, error, etag);
      if (patch) run.downloader.start({ url: j.delta!.url, size: j.delta!.size, sha256: j.delta!.sha256, written: 0 }, done);
      // The file is complete and its tag checked (journaled after): the plain image in the slot is adopted and rehashed.
      else if (j.enc && j.written >= j.size) run.downloader.start({ url: j.url, size: j.enc.plainSize, sha256: j.enc.plainSha256, written: j.enc.plainSize }, done);
      else run.downloader.start({ url: j.url, size: j.size, sha256: j.sha256, written: j.written, ...(j.etag !== undefined ? { etag: j.etag } : {}) }, done);
    } catch (e) {
      return this.updated(undefined, e);
    }
  }

  private downloaded(run: UpdateRun, error: unknown, etag: string | undefined): void {
    const { j, full: slot, patch } = run;
    try {
      // The patch is the signed one; output that is not the manifest's image was made from another base.
      if (error === null && patch && patch.outputSha256 !== j.sha256) error = new OtaError("DELTA_BASE", `patch output ${patch.outputSha256.slice(0, 16)}..., manifest ${j.sha256.slice(0, 16)}...: made against another base`);
      if (error !== null) {
        slot.abort();
        if (patch) return this.fallBack(j, error);
        return this.endUpdate(j, error);
      }
    } catch (e) {
      return this.updated(undefined, e);
    }
    if (!patch && etag !== undefined) j.etag = etag;
    this.afterDownload(j, slot).then((out) => this.updated(out), (e: unknown) => this.updated(undefined, e));
  }

  /** Every byte is in: verify, (hold,) install, (hold,) restart. */
  private async afterDownload(j: Journal, slot: UpdateSlot): Promise<CheckOutcome> {
    const { ports, ctx } = this;
    const journal = ctx.journal;
    j.written = j.size;
    j.phase = "verifying";
    journal.save(j);
    this.emit("verifying", releaseFields(j));
    try {
      verifySlot((o, t) => slot.read(o, t), {
        size: j.enc ? j.enc.plainSize : j.size, sha256: j.enc ? j.enc.plainSha256 : j.sha256, version: j.to, secureVersion: j.secureVersion, antiRollback: this.config.antiRollback,
        project: this.running.project, chipId: ports.system.chipId(), requireSignature: this.config.requireImageSignature, imageKeys: this.imageKeys,
      }, ports.crypto, ctx.scratch);
      slot.markVerified();
    } catch (e) {
      slot.abort();
      j.written = 0;
      return this.fail(j, e);
    }
    if (this.control && !(await this.control.holdBeforeInstall(j))) {
      slot.abort();
      return this.fail(j, new OtaError("CONTROL_CANCELLED", "while awaiting install"));
    }
    j.phase = "installing";
    journal.save(j);
    this.emit("installing", releaseFields(j));
    try {
      slot.finish(ctx.boot);
    } catch (e) {
      slot.abort();
      return this.fail(j, e);
    }
    j.phase = "rebooting";
    journal.save(j);
    this.emit("rebooting", releaseFields(j));
    await holdBeforeReboot(ctx, j, this.rebootWhen);
    this.current = "rebooting";
    if (this.beforeRestart) {
      try {
        await this.beforeRestart();
      } catch (e) {
        ports.system.log(`before restart: ${codeOf(e)}`); // the restart goes ahead: the new image is already the boot slot
      }
    }
    ports.system.restart(`update to ${j.to}`);
    return { state: "rebooting", version: j.to };
  }

  /**
   * The patch failed (a bad, cut or missing patch, or one from another base): once per release,
   * report the code and fetch the full image instead, with the attempt count reset (journaled
   * `noDelta`, so a reboot does not take the patch again). Nothing was installed: the slot is
   * rewritten from 0. A power cut or a flash error is not a patch's fault and is not retried.
   */
  private fallBack(j: Journal, e: unknown): void {
    const code = codeOf(e);
    if (code === "FLASH_POWER_CUT" || code.startsWith("FLASH_")) return this.endUpdate(j, e);
    const detail = e instanceof OtaError ? e.detail : String(e);
    try {
      delete j.delta;
      delete j.etag;
      j.noDelta = true;
      j.written = 0;
      this.ctx.journal.setTries(j.sha256, 0);
      this.ctx.journal.save(j);
      this.emit("downloading", releaseFields(j, { code, progress: 0, detail: `delta failed (${detail}); fetching the full image` }));
    } catch (e2) {
      return this.updated(undefined, e2);
    }
    this.update(j);
  }

  /** fail(), then updated() with its outcome or what it threw. */
  private endUpdate(j: Journal, e: unknown): void {
    let out: CheckOutcome;
    try {
      out = this.fail(j, e);
    } catch (e2) {
      return this.updated(undefined, e2);
    }
    this.updated(out);
  }

  /** A failed release: permanent failures use up the attempt cap so the release is not fetched again in a loop. */
  private fail(j: Journal, e: unknown): CheckOutcome {
    const code = codeOf(e);
    if (code === "FLASH_POWER_CUT") throw e;
    const detail = e instanceof OtaError ? e.detail : String(e);
    const journal = this.ctx.journal;
    // Transient codes reach here only once the attempt cap is used up; permanent ones use it up now.
    journal.setTries(j.sha256, Math.max(journal.tries(j.sha256), this.config.retry.maxAttempts));
    // An operator's cancel is its own outcome, not a failure a rollout's halt threshold counts.
    const state: AgentState = code === "CONTROL_CANCELLED" ? "cancelled" : "failed";
    const failed: Journal = { ...j, phase: state, code, detail };
    delete failed.paused;
    this.emit(state, releaseFields(failed, { code, detail }));
    journal.save(failed);
    return { state, code, version: j.to };
  }
}

/**
 * One update's download: the Downloader's dependencies as methods (in flash on the device, the
 * agent being preloaded) rather than a dozen closures made in RAM for the whole download.
 */
class UpdateRun implements DownloadDeps {
  readonly http: HttpPort;
  readonly clock: ClockPort;
  readonly crypto: CryptoPort;
  /** What the body goes into: the slot, or the patch applier in front of it. */
  readonly slot: SlotWriter;
  readonly buffer: Uint8Array;
  readonly download: DownloadConfig;
  readonly retry: RetryConfig;
  readonly downloader: Downloader;
  private nextMilestone: number;

  constructor(
    private readonly ctx: AgentContext,
    readonly j: Journal,
    readonly gate: DownloadGate | undefined,
    readonly full: UpdateSlot,
    readonly patch: PatchWriter | undefined,
    readonly enc: EncSlot | undefined,
    readonly random: () => number,
    private readonly observer: AgentObserver,
  ) {
    const { ports, config } = ctx;
    this.http = ports.http;
    this.clock = ports.clock;
    this.crypto = ports.crypto;
    this.slot = patch ?? enc ?? full;
    this.buffer = ctx.scratch;
    // A cap below the rate floor would end every attempt: the floor follows the cap down.
    const cap = gate ? gate.bytesPerSec : 0;
    this.download = cap > 0 && cap < config.download.minBytesPerSec * 2 ? { ...config.download, minBytesPerSec: Math.floor(cap / 2) } : config.download;
    this.retry = config.retry;
    this.nextMilestone = MILESTONES.findIndex((m) => m > Math.floor((j.written * 100) / j.size));
    this.downloader = new Downloader(this);
  }

  /** The image's first block (of the patch's output, for a delta): magic, chip, project, size. */
  checkImage(first: Uint8Array): void {
    checkImageStart(first, this.ctx.running.project, this.ctx.ports.system.chipId());
  }

  checkStart(first: Uint8Array): void {
    if (!this.patch && !this.enc) this.checkImage(first); // a patch or a decryption checks its output's first block itself
  }

  checkpoint(written: number, etag: string | undefined): void {
    if (this.patch || this.enc) return; // nothing to resume from inside a patch or a decryption: the journal keeps written = 0
    const j = this.j;
    j.written = written;
    if (etag === undefined) delete j.etag;
    else j.etag = etag;
    this.ctx.journal.save(j);
  }

  progress(written: number, total: number): void {
    if (this.observer.onProgress) this.observer.onProgress(written, total);
    const pct = Math.floor((written * 100) / total);
    while (this.nextMilestone >= 0 && this.nextMilestone < MILESTONES.length && pct >= MILESTONES[this.nextMilestone]!) {
      this.ctx.emit("downloading", releaseFields(this.j, { progress: MILESTONES[this.nextMilestone]! }));
      this.nextMilestone++;
    }
  }

  failedAttempt(code: ErrorCode, detail: string): number {
    const journal = this.ctx.journal;
    const n = journal.tries(this.j.sha256) + 1;
    journal.setTries(this.j.sha256, n);
    this.ctx.ports.system.log(`download attempt ${n} failed: ${code} ${detail}`);
    return n;
  }

  log(line: string): void {
    this.ctx.ports.system.log(line);
  }
}
