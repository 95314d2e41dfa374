/*
 * Whether to take a verified release: a readonly table of rules, each a stored or reported
 * fact -> refusal code, checked in order (busy first, then the lasting reasons, then the
 * transient ones). `force` overrides only the maintenance window and the rollout percentage
 * (FLEET's checkEligibility), the per-release attempt cap and the backoff after a network-caused
 * rollback; never a version, signature or anti-rollback rule. A release rolled back for its own
 * failure is refused for good (POLICY_ROLLED_BACK); one rolled back for a network cause is held
 * (POLICY_ROLLBACK_BACKOFF) and tried again, up to networkRetry.maxAttempts (POLICY_ROLLBACK_CAP).
 */
import type { ErrorCode } from "./errors";
import type { Manifest, ManifestDelta } from "./manifest";
import type { AppConfig } from "./config";
import type { CryptoPort } from "./ports";
import { compareSemver } from "./semver";
import { checkEligibility } from "./eligibility";
import { constant } from "./constant";

export interface PolicyFacts {
  manifest: Manifest;
  config: AppConfig;
  running: { version: string; secureVersion: number; project: string };
  /** Running image still PENDING_VERIFY. */
  pendingVerify: boolean;
  /** Anti-rollback floor (stored; the eFuse on the chip). */
  floor: number;
  chipId: number;
  deviceId: string;
  slotSize: number;
  /** Wall clock ms (0 when not set: time rules are skipped). */
  wallNow: number;
  /** Failed download attempts at this release so far. */
  tries: number;
  /** This release was rolled back on this device before. */
  rolledBack: boolean;
  /** Rollbacks of this release for a network cause so far (default 0). */
  networkRollbacks?: number;
  /** Within the backoff after such a rollback. */
  rollbackHold?: boolean;
  force: boolean;
  crypto: CryptoPort;
  /** A device key for esp_encrypted_img (modules/enc-key.ts) and the ciphers to use it. */
  canDecrypt?: boolean;
}

interface Rule {
  readonly code: ErrorCode;
  readonly refuse: (f: PolicyFacts) => boolean;
}

const after = (a: string, b: string) => compareSemver(a, b) > 0;

export const POLICY_RULES: readonly Rule[] = constant([
  { code: "POLICY_BUSY", refuse: (f) => f.pendingVerify },
  { code: "POLICY_PRODUCT", refuse: (f) => f.manifest.product !== f.config.product },
  { code: "POLICY_REVOKED_VERSION", refuse: (f) => (f.config.revokedVersions ?? []).indexOf(f.manifest.version) >= 0 },
  { code: "POLICY_ROLLBACK_CAP", refuse: (f) => (f.networkRollbacks ?? 0) >= f.config.networkRetry.maxAttempts },
  { code: "POLICY_ROLLED_BACK", refuse: (f) => f.rolledBack },
  { code: "POLICY_NOT_NEWER", refuse: (f) => !after(f.manifest.version, f.running.version) },
  { code: "POLICY_DOWNGRADE", refuse: (f) => f.manifest.secureVersion < Math.max(f.floor, f.running.secureVersion) },
  { code: "POLICY_MIN_VERSION", refuse: (f) => f.manifest.minVersion !== undefined && after(f.manifest.minVersion, f.running.version) },
  { code: "IMAGE_CHIP", refuse: (f) => f.manifest.chip !== undefined && f.manifest.chip !== f.chipId },
  // An encrypted release without a device key (or a binding without ciphers) is refused before its
  // download, the running image untouched, rather than fetched and then refused (issue 31).
  { code: "ENC_KEY", refuse: (f) => f.manifest.encryption !== undefined && f.canDecrypt !== true },
  { code: "IMAGE_TOO_LARGE", refuse: (f) => (f.manifest.encryption?.plainSize ?? f.manifest.size) > f.slotSize },
  { code: "MANIFEST_EXPIRED", refuse: (f) => f.wallNow > 0 && f.wallNow >= f.manifest.expires },
  { code: "MANIFEST_NOT_YET", refuse: (f) => f.wallNow > 0 && f.manifest.notBefore !== undefined && f.wallNow < f.manifest.notBefore },
  { code: "POLICY_RETRY_CAP", refuse: (f) => !f.force && f.tries >= f.config.retry.maxAttempts },
  { code: "POLICY_ROLLBACK_BACKOFF", refuse: (f) => !f.force && f.rollbackHold === true },
]);

/** null when the release may be installed now, else the first refusal code (ErrorCode). Raises nothing. */
export function decide(f: PolicyFacts): ErrorCode | null {
  for (const rule of POLICY_RULES) if (rule.refuse(f)) return rule.code;
  const device = { id: f.deviceId, hardware: f.config.hardware, region: f.config.region, groups: f.config.groups };
  const m = f.force ? { ...f.manifest, force: true } : f.manifest;
  return checkEligibility(m, device, f.wallNow, f.config.maintenanceWindow, f.crypto);
}

/**
 * The release's delta to take, or undefined for its full image: the first delta whose base is
 * the running image, i.e. whose from.version is the running version (cheap, checked first) and
 * whose from.sha256 is the SHA-256 of the running slot's first from.size bytes (`runningSha256`,
 * one read of those bytes per candidate). A base larger than the slot is never the running image.
 * Raises what `runningSha256` raises (FLASH_*).
 */
export function chooseDelta(m: Manifest, config: AppConfig, running: { version: string }, slotSize: number, runningSha256: (size: number) => string): ManifestDelta | undefined {
  if (config.deltas === false) return undefined;
  for (const d of m.deltas ?? []) {
    if (d.from.version !== running.version || d.from.size > slotSize) continue;
    if (runningSha256(d.from.size) === d.from.sha256) return d;
  }
  return undefined;
}
