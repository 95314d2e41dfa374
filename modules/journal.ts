/*
 * The update journal: what the agent has done to the update slot and otadata, stored in NVS
 * before each next side effect, so a power cut or a reboot at any point resumes or recovers.
 *
 * Store layout (domain "xsota", modules/nvs-domains.ts; each key one atomic NVS set):
 *   "journal"  JSON Journal (the release in progress and its last phase)
 *   "floor", "floor2"  anti-rollback floor (integer, the larger of the two: see raiseFloor).
 *              With hardware anti-rollback on, the chip's secure-version eFuse would hold it
 *              (a thermometer code that can only grow); here it is kept in NVS.
 *   "tries"    "<sha256>:<count>" failed download attempts for one release (survives reboots)
 *   "said"     "<sha256>:<code>" the last refusal/failure reported, so it is reported once
 *   "bad"      JSON string[] of sha256 prefixes of releases rolled back on this device
 *   "netrb"    "<sha256 prefix>:<count>:<wall ms>" rollbacks of one release for a network cause,
 *              and the wall time (0: clock unset) before which it is not tried again
 */
import type { StorePort } from "./ports";
import type { AgentState } from "./events";
import { isErrorCode, type ErrorCode } from "./errors";
import { constant } from "./constant";
import { DOMAINS, adoptLegacy, dropLegacy } from "./nvs-domains";

const DOMAIN = DOMAINS.journal;
const MAX_BAD = 8;

export interface Journal {
  /** Last journaled state of this release. */
  phase: AgentState;
  from: string;
  fromSlot: number;
  to: string;
  secureVersion: number;
  sha256: string;
  size: number;
  url: string;
  targetSlot: number;
  rollout?: string;
  /** ETag of the image on the host, for If-Range. */
  etag?: string;
  /** Bytes known to be in the slot (block aligned, or == size when complete; a delta's stays 0 until its output is complete). */
  written: number;
  /** The release comes as a patch from the running image (modules/delta-download.ts): the patch's URL, size and SHA-256, the base's size. */
  delta?: JournalDelta;
  /**
   * An esp_encrypted_img release (modules/enc-slot.ts): `size`/`sha256`/`url` are the file's as
   * published, these the plain image's the slot receives (`written` stays 0 until the file is in).
   */
  enc?: JournalEnc;
  /** This release's patch failed on this device: the full image only. */
  noDelta?: boolean;
  code?: ErrorCode;
  detail?: string;
  /** Paused by a control command: the next check does not resume the download until "resume". */
  paused?: boolean;
  /** This rollback's network cause is already counted in "netrb" (a report repeated after a power cut counts once). */
  netCounted?: boolean;
}

export interface JournalEnc {
  plainSize: number;
  plainSha256: string;
}

export interface JournalDelta {
  url: string;
  size: number;
  sha256: string;
  baseSize: number;
}

const PHASES: readonly AgentState[] = constant(["idle", "checking", "downloading", "verifying", "installing", "rebooting", "confirming", "committed", "failed", "rolled-back", "refused", "paused", "awaiting-install", "awaiting-reboot", "cancelled"]);

function valid(j: Journal): boolean {
  return (
    typeof j === "object" && j !== null && PHASES.indexOf(j.phase) >= 0 &&
    typeof j.from === "string" && typeof j.to === "string" && typeof j.sha256 === "string" &&
    Number.isInteger(j.size) && Number.isInteger(j.written) && j.written >= 0 && j.written <= j.size &&
    Number.isInteger(j.targetSlot) && Number.isInteger(j.fromSlot) && typeof j.url === "string" &&
    Number.isInteger(j.secureVersion) && (j.code === undefined || isErrorCode(j.code)) &&
    (j.enc === undefined || (typeof j.enc === "object" && j.enc !== null && Number.isInteger(j.enc.plainSize) && typeof j.enc.plainSha256 === "string")) &&
    (j.delta === undefined || (typeof j.delta === "object" && j.delta !== null && typeof j.delta.url === "string" && typeof j.delta.sha256 === "string" && Number.isInteger(j.delta.size) && Number.isInteger(j.delta.baseSize)))
  );
}

export class JournalStore {
  /**
   * Takes what firmware before the namespacing left in "ota" and "ctl" (modules/control.ts has no
   * open of its own: the journal is opened first on every boot); the old keys stay until this
   * image commits (modules/nvs-domains.ts). Throws STORE_*.
   */
  constructor(private readonly store: StorePort) {
    adoptLegacy(store);
  }

  /** The stored journal; undefined when none. A corrupt one is deleted (JOURNAL_CORRUPT is the caller's to report) and `corrupt` is set. */
  load(): { journal?: Journal; corrupt: boolean } {
    const raw = this.store.get(DOMAIN, "journal");
    if (raw === undefined) return { corrupt: false };
    try {
      const j = typeof raw === "string" ? (JSON.parse(raw) as Journal) : undefined;
      if (j && valid(j)) return { journal: j, corrupt: false };
    } catch {
      // fall through
    }
    this.store.delete(DOMAIN, "journal");
    return { corrupt: true };
  }

  /** One NVS set. Throws STORE_* from the store. */
  save(j: Journal): void {
    this.store.set(DOMAIN, "journal", JSON.stringify(j));
    if (j.phase === "committed") dropLegacy(this.store);
  }

  clear(): void {
    this.store.delete(DOMAIN, "journal");
  }

  floor(): number {
    const a = this.store.get(DOMAIN, "floor");
    const b = this.store.get(DOMAIN, "floor2");
    return Math.max(typeof a === "number" ? a : 0, typeof b === "number" ? b : 0);
  }

  /**
   * Raise (never lower) the anti-rollback floor. Written to two keys, one after the other:
   * Moddable's Preference.set on the ESP32 erases a key before it writes it, so a power cut
   * in between loses that key; the other one still holds the floor.
   */
  raiseFloor(secureVersion: number): void {
    if (secureVersion <= this.floor()) return;
    this.store.set(DOMAIN, "floor", secureVersion);
    this.store.set(DOMAIN, "floor2", secureVersion);
  }

  tries(sha256: string): number {
    const t = this.store.get(DOMAIN, "tries");
    if (typeof t !== "string") return 0;
    const i = t.lastIndexOf(":");
    return t.slice(0, i) === sha256 ? Number(t.slice(i + 1)) || 0 : 0;
  }

  setTries(sha256: string, count: number): void {
    this.store.set(DOMAIN, "tries", `${sha256}:${count}`);
  }

  /** True when this (release, code) was already reported; records it otherwise. */
  alreadySaid(sha256: string, code: ErrorCode): boolean {
    const key = `${sha256.slice(0, 32)}:${code}`;
    if (this.store.get(DOMAIN, "said") === key) return true;
    this.store.set(DOMAIN, "said", key);
    return false;
  }

  /** Rollbacks of this release for a network cause (CONFIRM_NETWORK, CONFIRM_UNREACHABLE). */
  netRollbacks(sha256: string): number {
    return this.netrb(sha256)[0];
  }

  /** Wall time (ms) before which this release is held after a network rollback; 0 when none. */
  netHold(sha256: string): number {
    return this.netrb(sha256)[1];
  }

  setNetRollbacks(sha256: string, count: number, holdUntilWall: number): void {
    this.store.set(DOMAIN, "netrb", `${sha256.slice(0, 32)}:${count}:${Math.max(0, Math.floor(holdUntilWall))}`);
  }

  private netrb(sha256: string): [number, number] {
    const t = this.store.get(DOMAIN, "netrb");
    if (typeof t !== "string") return [0, 0];
    const parts = t.split(":");
    if (parts[0] !== sha256.slice(0, 32)) return [0, 0];
    return [Number(parts[1]) || 0, Number(parts[2]) || 0];
  }

  isBad(sha256: string): boolean {
    return this.bad().indexOf(sha256.slice(0, 32)) >= 0;
  }

  markBad(sha256: string): void {
    const list = this.bad();
    const id = sha256.slice(0, 32);
    if (list.indexOf(id) >= 0) return;
    list.push(id);
    while (list.length > MAX_BAD) list.shift();
    this.store.set(DOMAIN, "bad", JSON.stringify(list));
  }

  private bad(): string[] {
    const raw = this.store.get(DOMAIN, "bad");
    if (typeof raw !== "string") return [];
    try {
      const list = JSON.parse(raw) as unknown;
      return Array.isArray(list) ? list.filter((s): s is string => typeof s === "string") : [];
    } catch {
      return [];
    }
  }
}
