/*
 * The agent's side of per-update control (modules/control.ts has the gate and the signed
 * commands): what pause / resume / cancel / download-only / install do to the update in
 * flight and the wait for an install after a download-only (the wait for the application's
 * rebootWhen before the restart is the core's: modules/reboot-hold.ts). An optional feature
 * (modules/features.ts): the agent takes it as CONTROL. Each step is journaled before it is reported, as every
 * transition is (modules/agent.ts).
 *
 *   downloading --pause--> paused --resume--> downloading        (journal: paused: true)
 *   downloading|paused|awaiting-install --cancel--> cancelled    (CONTROL_CANCELLED; otadata untouched)
 *   verifying --(download-only held)--> awaiting-install --install | window--> installing
 */
import type { AgentState } from "./events";
import type { AgentContext } from "./context";
import type { Journal } from "./journal";
import type { ControlCommand, ControlFeature, ControlResult, UpdateControlPort } from "./features";
import { DownloadGate, holdForInstall, setHoldForInstall } from "./control";
import { inWindow } from "./eligibility";
import { releaseFields } from "./confirm";

export type { ControlResult } from "./features";

/** How often a held release looks at the maintenance window (ms). */
const WINDOW_POLL_MS = 60_000;

export class UpdateControl implements UpdateControlPort {
  gate: DownloadGate;
  /** The release in flight (between the journal's downloading and rebooting), if any. */
  private job: Journal | undefined;
  private installWaiter: ((go: boolean) => void) | undefined;
  private windowTimer = 0;

  constructor(private readonly ctx: AgentContext) {
    this.gate = new DownloadGate(ctx.ports.clock, ctx.config.download.maxBytesPerSec);
  }

  /** A new update starts: a fresh gate with the lower of the device's and the manifest's caps; a journaled pause stays. */
  begin(j: Journal, manifestCap?: number): DownloadGate {
    const device = this.ctx.config.download.maxBytesPerSec;
    const cap = manifestCap === undefined ? device : device > 0 ? Math.min(device, manifestCap) : manifestCap;
    this.gate.close();
    this.gate = new DownloadGate(this.ctx.ports.clock, cap);
    this.job = j;
    if (j.paused) {
      this.gate.pause();
      this.ctx.emit("paused", releaseFields(j, { progress: Math.floor((j.written * 100) / j.size), detail: `paused at byte ${j.written} (journaled)` }));
    }
    return this.gate;
  }

  end(): void {
    this.job = undefined;
    this.gate.close();
    if (this.windowTimer) this.ctx.ports.clock.clearTimeout(this.windowTimer);
    this.windowTimer = 0;
  }

  /** Apply a verified control command. Raises STORE_* only. */
  command(cmd: ControlCommand): ControlResult {
    const { ctx } = this;
    const j = this.job;
    const store = ctx.ports.store;
    const progress = j ? Math.floor((j.written * 100) / j.size) : 0;
    switch (cmd) {
      case "pause":
        if (!j || j.phase !== "downloading" || j.paused) return this.refuse(cmd, "no download in flight");
        j.paused = true;
        ctx.journal.save(j);
        ctx.emit("paused", releaseFields(j, { progress, detail: `paused at byte ${j.written}` }));
        this.gate.pause();
        return { ok: true, state: "paused" };
      case "resume":
        if (!j || !j.paused) return this.refuse(cmd, "nothing paused");
        delete j.paused;
        ctx.journal.save(j);
        ctx.emit("downloading", releaseFields(j, { progress, detail: `resumed at byte ${j.written}` }));
        this.gate.resume();
        return { ok: true, state: "downloading" };
      case "cancel":
        if (!j || (j.phase !== "downloading" && j.phase !== "awaiting-install")) return this.refuse(cmd, "no update to cancel");
        this.gate.cancel();
        this.release(false);
        return { ok: true, state: "cancelled" };
      case "download-only":
        setHoldForInstall(store, true);
        ctx.ports.system.log(`ota: download-only: the next verified release waits for install${ctx.config.maintenanceWindow ? " or the window" : ""}`);
        return { ok: true, state: j ? j.phase : "idle" };
      case "install":
        if (!holdForInstall(store) && !this.installWaiter) return this.refuse(cmd, "nothing held for install");
        setHoldForInstall(store, false);
        this.release(true);
        return { ok: true, state: j ? j.phase : "idle" };
    }
  }

  holdsForInstall(): boolean {
    return holdForInstall(this.ctx.ports.store);
  }

  /**
   * After verification: when download-only is held, journal and report awaiting-install, then
   * wait for an install command or the maintenance window. Resolves false on cancel.
   */
  async holdBeforeInstall(j: Journal): Promise<boolean> {
    const { ctx } = this;
    if (!holdForInstall(ctx.ports.store)) return true;
    const window = ctx.config.maintenanceWindow;
    const clock = ctx.ports.clock;
    j.phase = "awaiting-install";
    ctx.journal.save(j);
    ctx.emit("awaiting-install", releaseFields(j, { detail: window ? `until install or the window ${window.startMinute}-${window.endMinute} UTC` : "until install" }));
    const go = await new Promise<boolean>((resolve) => {
      this.installWaiter = resolve;
      const look = () => {
        this.windowTimer = 0;
        if (window && clock.wallTime() > 0 && inWindow(window, clock.wallTime())) return this.release(true);
        this.windowTimer = clock.setTimeout(look, WINDOW_POLL_MS);
      };
      if (window) look();
    });
    if (go) setHoldForInstall(ctx.ports.store, false);
    return go;
  }

  private release(go: boolean): void {
    const w = this.installWaiter;
    this.installWaiter = undefined;
    if (this.windowTimer) this.ctx.ports.clock.clearTimeout(this.windowTimer);
    this.windowTimer = 0;
    if (w) w(go);
  }

  private refuse(cmd: ControlCommand, why: string): ControlResult {
    const j = this.job;
    const fields = j ? releaseFields(j, { code: "CONTROL_STATE", detail: `${cmd}: ${why}` }) : { code: "CONTROL_STATE" as const, detail: `${cmd}: ${why}` };
    const state: AgentState = j ? (j.paused ? "paused" : j.phase) : "idle";
    // Reported without changing the agent's state: a refused command is not a refused release.
    this.ctx.emit(state, fields);
    return { ok: false, state, code: "CONTROL_STATE" };
  }
}

/** The control feature as the agent takes it (AppExtra.features; modules/features.ts). */
class Control implements ControlFeature {
  create(ctx: AgentContext): UpdateControlPort {
    return new UpdateControl(ctx);
  }
}

export const CONTROL: ControlFeature = Object.freeze(new Control());
