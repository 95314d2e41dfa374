/*
 * Eligibility: the device decides from the signed manifest alone whether a release is for it,
 * so a staged rollout works from a plain static host.
 *
 * - Targeting: `hardware` (revision list), `regions` and `groups` (any overlap) narrow a release;
 *   an absent or empty list targets everyone.
 * - Staged rollout: bucket = SHA-256(`${deviceId}:${rolloutId}`), first 4 bytes big-endian,
 *   mod 10000; eligible when bucket < percent * 100. The rollout id stays constant while the
 *   percentage grows, so raising it only ever adds devices.
 * - Maintenance window (device configuration, UTC minutes): outside it, nothing installs.
 *
 * `force` (a critical patch) overrides only the window and the rollout percentage. Targeting
 * still applies, and every signature, version and anti-rollback check is the policy's
 * (modules/policy.ts) and is never skipped.
 *
 * The manifest is verified before it gets here (SIGN's verifyManifest); this module reads only
 * the fields below, declared structurally so any Manifest fits.
 */
import type { CryptoPort } from "./ports";
import type { ErrorCode } from "./errors";
import { utf8Encode } from "./bytes";

/** The fields of SIGN's Manifest (modules/manifest.ts) that eligibility reads. */
export interface EligibilityManifest {
  hardware?: readonly string[];
  groups?: readonly string[];
  regions?: readonly string[];
  rollout?: { readonly id: string; readonly percent: number };
  force?: boolean;
}

export interface DeviceIdentity {
  id: string;
  hardware?: string;
  region?: string;
  groups?: readonly string[];
}

/** Minutes after 00:00 UTC; start > end wraps past midnight; start === end means all day. */
export interface Window {
  startMinute: number;
  endMinute: number;
}

export const BUCKETS = 10000;

/** The device's stable rollout bucket, 0..9999. Throws TypeError on empty ids. */
export function rolloutBucket(deviceId: string, rolloutId: string, crypto: CryptoPort): number {
  if (typeof deviceId !== "string" || deviceId === "") throw new TypeError("deviceId must be a non-empty string");
  if (typeof rolloutId !== "string" || rolloutId === "") throw new TypeError("rolloutId must be a non-empty string");
  const h = crypto.sha256();
  h.write(utf8Encode(`${deviceId}:${rolloutId}`));
  const d = h.close();
  const word = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
  return word % BUCKETS;
}

/** True when `bucket` falls inside `percent` (0..100, fractions allowed: 0.5 = 50 buckets). */
export function inRollout(bucket: number, percent: number): boolean {
  if (typeof percent !== "number" || percent !== percent) return false;
  return bucket < percent * 100;
}

/**
 * True when wall time `nowMs` (ms since the epoch, UTC) is inside the window. An unset clock
 * (nowMs <= 0, before SNTP) is never inside a window: the device waits or needs a forced update.
 */
export function inWindow(window: Window, nowMs: number): boolean {
  if (!(nowMs > 0)) return false;
  const minute = Math.floor(nowMs / 60000) % 1440;
  const { startMinute: s, endMinute: e } = window;
  if (s === e || (s === 0 && e >= 1440)) return true;
  return s < e ? minute >= s && minute < e : minute >= s || minute < e;
}

function listed(list: readonly string[] | undefined): list is readonly string[] {
  return list !== undefined && list.length > 0;
}

/**
 * Whether this device should take this release now. Returns null when eligible, else the
 * refusal code: POLICY_HARDWARE (hardware revision not targeted), POLICY_GROUP (region or
 * group not targeted), POLICY_ROLLOUT (bucket above the percentage), POLICY_WINDOW (outside
 * the maintenance window). Targeting is checked first so a refusal names the lasting reason.
 * Raises nothing for a verified manifest (rolloutBucket's TypeError only for an empty device id).
 */
export function checkEligibility(
  manifest: EligibilityManifest,
  device: DeviceIdentity,
  nowMs: number,
  window: Window | undefined,
  crypto: CryptoPort,
): ErrorCode | null {
  if (listed(manifest.hardware) && (device.hardware === undefined || manifest.hardware.indexOf(device.hardware) < 0)) {
    return "POLICY_HARDWARE";
  }
  if (listed(manifest.regions) && (device.region === undefined || manifest.regions.indexOf(device.region) < 0)) {
    return "POLICY_GROUP";
  }
  if (listed(manifest.groups)) {
    const mine = device.groups ?? [];
    let hit = false;
    for (const g of mine) if (manifest.groups.indexOf(g) >= 0) hit = true;
    if (!hit) return "POLICY_GROUP";
  }
  const force = manifest.force === true;
  if (!force && manifest.rollout !== undefined) {
    const bucket = rolloutBucket(device.id, manifest.rollout.id, crypto);
    if (!inRollout(bucket, manifest.rollout.percent)) return "POLICY_ROLLOUT";
  }
  if (!force && window !== undefined && !inWindow(window, nowMs)) return "POLICY_WINDOW";
  return null;
}
