/*
 * End-to-end scenarios of one simulated device, as data: what is published, what the host does
 * wrong, how the device is configured, and what must come out. `runScenario(s, engine, lab)`
 * returns a comparable Outcome (no timestamps): test/agent runs every scenario with the Node
 * engine, test/xs the same list in XS, and the two outcomes must be equal.
 *
 * Deterministic: images are built from their spec, jitter is seeded by the device id, time is
 * virtual. (Signatures are not: ECDSA nonces are random, so compare outcomes made in ONE lab.)
 */
import type { Engine } from "../engines/engine";
import type { AgentState } from "../../modules/events";
import type { ErrorCode } from "../../modules/errors";
import type { Fault } from "../../backend/update-host";
import { honest } from "./wire-host";
import { wireScenarios } from "./wire-scenarios";
import { redirectScenarios } from "./redirect-scenarios";
import { networkScenarios } from "./network-scenarios";
import { createHash } from "node:crypto";
import { Lab, FACTORY, type ReleaseSpec, type ImageSpec } from "./lab";
import type { SimDevice, SimDeviceOptions } from "../chip/device";
import type { SimChip, Geometry } from "../chip/chip";
import { decodeEntry, OTA_SECTOR } from "../../modules/otadata";
import { stateName } from "../chip/otadata-model";
import { JournalStore } from "../../modules/journal";
import type { StorePort } from "../../modules/ports";
import type { DeltaCompression } from "../../modules/manifest";
import { deltaEntry } from "../../backend/release/manifest-tool";
import { nextBuild } from "./next-build";
import { createPatch } from "../../backend/delta/create";

export type { Expect, DeltaSpec, Scenario } from "./scenario";
import type { Scenario, DeltaSpec } from "./scenario";

export type EventTuple = [state: AgentState, code: ErrorCode | null, from: string, to: string | null, progress: number | null];

export interface Outcome {
  scenario: string;
  running: { version: string; slot: number } | null;
  bricked: boolean;
  boots: number;
  /** Version booted at each boot, in order. */
  bootVersions: string[];
  /** Flash writes + erases during the run (bootloader and NVS included). */
  flashOps: number;
  /** A scheduled power cut happened. */
  cutHappened: boolean;
  /** Compactions of SIM's NVS log during the run (0 when the store does not say). */
  nvsCompactions: number;
  events: EventTuple[];
  /** The last result state and code. */
  final: AgentState | null;
  code: ErrorCode | null;
  otadata: { seq: number; state: string }[];
  sha256: { app0: string; app1: string; otadata: string };
  floor: number;
  /** The chip's secure-version eFuse (raised only by a bootloader with anti-rollback on). */
  efuse: number;
  /** Virtual ms from the first "downloading" event to "verifying" (null without both). */
  downloadMs: number | null;
}

const RESULTS: readonly AgentState[] = ["committed", "rolled-back", "failed", "refused", "cancelled"];
const V11: ImageSpec = { version: "1.1.0", secureVersion: 1 };
const cutAt = (...at: number[]): Fault[] => at.map((n) => ({ kind: "cut-at", at: n, times: 1 }));

export const scenarios: Scenario[] = [
  { name: "happy", summary: "1.0.0 -> 1.1.0, self-test passes, committed", releases: [{ image: V11 }], expect: { version: "1.1.0", final: "committed" } },
  {
    name: "second-update", summary: "1.0.0 -> 1.1.0 -> 1.2.0: slots alternate, seq grows, floor rises",
    releases: [{ image: V11 }, { image: { version: "1.2.0", secureVersion: 2 } }], expect: { version: "1.2.0", final: "committed" },
  },
  { name: "signed-image", summary: "image signature required and present (espsecure v1)", releases: [{ image: V11, imageSignature: "trusted" }], config: { requireImageSignature: true }, expect: { version: "1.1.0", final: "committed" } },
  // Rollbacks
  { name: "rollback-fail-diagnostics", summary: "the new image's self-test fails: INVALID, restart, old image reports", releases: [{ image: { ...V11, behavior: "fail-diagnostics" } }], expect: { version: "1.0.0", final: "rolled-back", code: "CONFIRM_DIAGNOSTICS", app0Untouched: true } },
  { name: "board-regression-hit", summary: "an image whose self-test fails on esp32-rev1 only, on an esp32-rev1 board: rolled back", releases: [{ image: { ...V11, behavior: "fail-diagnostics@esp32-rev1" } }], device: { hardware: "esp32-rev1" }, expect: { version: "1.0.0", final: "rolled-back", code: "CONFIRM_DIAGNOSTICS", app0Untouched: true } },
  { name: "board-regression-miss", summary: "the same image on an esp32-rev3 board: it passes its self-test and commits", releases: [{ image: { ...V11, behavior: "fail-diagnostics@esp32-rev1" } }], device: { hardware: "esp32-rev3" }, expect: { version: "1.1.0", final: "committed" } },
  { name: "rollback-crash", summary: "the new image panics at boot: the bootloader rolls back", releases: [{ image: { ...V11, behavior: "crash-on-boot" } }], expect: { version: "1.0.0", final: "rolled-back", code: "ROLLBACK_BOOT", app0Untouched: true } },
  { name: "rollback-hang", summary: "the new image hangs: the task watchdog resets, the bootloader rolls back", releases: [{ image: { ...V11, behavior: "hang" } }], expect: { version: "1.0.0", final: "rolled-back", code: "ROLLBACK_BOOT", app0Untouched: true } },
  { name: "reboot-loop", summary: "the chip resets during every self-test: ends on the old image, the release is not retried", releases: [{ image: V11 }], device: { resetOn: { state: "confirming", times: 10 } }, expect: { version: "1.0.0", final: "rolled-back", code: "ROLLBACK_BOOT", app0Untouched: true } },
  // Refusals: the running slot untouched
  { name: "wrong-signature", summary: "manifest signature does not verify", releases: [{ image: V11, signer: "corrupt" }], expect: { version: "1.0.0", final: "refused", code: "SIG_INVALID", app0Untouched: true } },
  { name: "unknown-key", summary: "manifest signed by an untrusted key", releases: [{ image: V11, signer: "rogue" }], expect: { version: "1.0.0", final: "refused", code: "SIG_UNKNOWN_KEY", app0Untouched: true } },
  { name: "tampered-image", summary: "one byte of the served image changed", releases: [{ image: V11, serve: (b) => { const c = b.slice(); c[c.length - 100] ^= 1; return c; } }], expect: { version: "1.0.0", final: "failed", code: "DOWNLOAD_HASH", app0Untouched: true } },
  { name: "truncated-image", summary: "the host serves the image cut short", releases: [{ image: V11, serve: (b) => b.subarray(0, 40_000), manifest: {} }], expect: { version: "1.0.0", final: "failed", code: "DOWNLOAD_SIZE", app0Untouched: true } },
  { name: "truncated-build", summary: "an image cut short before it was signed: the manifest matches, the image does not validate", releases: [{ image: V11, transform: (b) => b.slice(0, 40_000) }], expect: { version: "1.0.0", final: "failed", code: "IMAGE_TRUNCATED", app0Untouched: true } },
  { name: "oversized-image", summary: "the manifest announces more than the slot holds", releases: [{ image: V11, manifest: { size: 2 * 1024 * 1024 } }], expect: { version: "1.0.0", final: "refused", code: "IMAGE_TOO_LARGE", app0Untouched: true } },
  { name: "wrong-chip", summary: "image built for an ESP32-S3", releases: [{ image: { ...V11, chipId: 9 } }], expect: { version: "1.0.0", final: "failed", code: "IMAGE_CHIP", app0Untouched: true } },
  { name: "wrong-project", summary: "image of another project", releases: [{ image: { ...V11, project: "other-thing" } }], expect: { version: "1.0.0", final: "failed", code: "IMAGE_PROJECT", app0Untouched: true } },
  { name: "version-mismatch", summary: "image version differs from the manifest's", releases: [{ image: V11, manifest: { version: "1.2.0" } }], expect: { version: "1.0.0", final: "failed", code: "IMAGE_VERSION", app0Untouched: true } },
  { name: "version-downgrade", summary: "a release older than the running one", factory: { version: "2.0.0", secureVersion: 1 }, releases: [{ image: V11 }], expect: { version: "2.0.0", final: "refused", code: "POLICY_NOT_NEWER" } },
  { name: "secure-version-downgrade", summary: "secure_version below the floor", factory: { version: "1.0.0", secureVersion: 3 }, releases: [{ image: { version: "1.1.0", secureVersion: 2 } }], expect: { version: "1.0.0", final: "refused", code: "POLICY_DOWNGRADE" } },
  // Anti-rollback (docs/esp32.md "Anti-rollback"): the floor the agent keeps, with and without ESP-IDF's eFuse.
  {
    name: "anti-rollback-manifest", summary: "images as ESP-IDF builds them without anti-rollback (secure_version 0): the committed manifest's secure_version is the floor",
    factory: { version: "1.0.0", secureVersion: 0 },
    releases: [{ image: { version: "1.1.0", secureVersion: 0 }, manifest: { secureVersion: 2 } }, { image: { version: "1.2.0", secureVersion: 0 }, manifest: { secureVersion: 1 } }],
    expect: { version: "1.1.0", final: "refused", code: "POLICY_DOWNGRADE", includes: [["committed", null], ["refused", "POLICY_DOWNGRADE"]], floor: 2, efuse: 0 },
  },
  {
    name: "anti-rollback-efuse", summary: "bootloader with CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK: the eFuse rises to the committed image's secure_version; a lower one is refused",
    factory: { version: "1.0.0", secureVersion: 1 }, config: { antiRollback: "efuse" }, device: { antiRollback: true },
    releases: [{ image: { version: "1.1.0", secureVersion: 2 } }, { image: { version: "1.2.0", secureVersion: 1 } }],
    expect: { version: "1.1.0", final: "refused", code: "POLICY_DOWNGRADE", includes: [["committed", null], ["refused", "POLICY_DOWNGRADE"]], floor: 2, efuse: 2 },
  },
  {
    name: "anti-rollback-efuse-mismatch", summary: "eFuse anti-rollback: an image whose secure_version is not the manifest's (0: built without it) is not installed",
    factory: { version: "1.0.0", secureVersion: 1 }, config: { antiRollback: "efuse" }, device: { antiRollback: true },
    releases: [{ image: { version: "1.1.0", secureVersion: 0 }, manifest: { secureVersion: 2 } }],
    expect: { version: "1.0.0", final: "failed", code: "IMAGE_SECURE_VERSION", app0Untouched: true, floor: 0, efuse: 1 },
  },
  {
    name: "secure-version-mismatch", summary: "an image built with secure_version 2 published as 3: not installed (either mode)",
    releases: [{ image: { version: "1.1.0", secureVersion: 2 }, manifest: { secureVersion: 3 } }],
    expect: { version: "1.0.0", final: "failed", code: "IMAGE_SECURE_VERSION", app0Untouched: true },
  },
  { name: "refused-once", summary: "the same refused release seen after a power cycle is not reported again", releases: [{ image: V11, manifest: { notBefore: Date.UTC(2030, 0, 1) } }, { image: V11, manifest: { notBefore: Date.UTC(2030, 0, 1) } }], expect: { version: "1.0.0", final: "refused", code: "MANIFEST_NOT_YET", app0Untouched: true } },
  { name: "expired", summary: "manifest expired", releases: [{ image: V11, manifest: { expires: Date.UTC(2025, 0, 1) } }], expect: { version: "1.0.0", final: "refused", code: "MANIFEST_EXPIRED", app0Untouched: true } },
  // Freshness (issue 29): a halted release (re-signed at 0 %, a higher metaVersion) whose older 100 % manifest is served again.
  {
    name: "replay-halted", summary: "the release halted at 0 %, then its older signed 100 % manifest served again: refused, never installed",
    releases: [
      { image: V11, manifest: { rollout: { id: "r1", percent: 0 }, metaVersion: Date.UTC(2026, 0, 1, 2) } },
      { image: V11, manifest: { rollout: { id: "r1", percent: 100 }, metaVersion: Date.UTC(2026, 0, 1, 1) } },
    ],
    expect: { version: "1.0.0", final: "refused", code: "MANIFEST_REPLAY", app0Untouched: true, includes: [["refused", "POLICY_ROLLOUT"], ["refused", "MANIFEST_REPLAY"]] },
  },
  { name: "wrong-channel", summary: "a release signed for the beta channel, the device follows stable", releases: [{ image: V11, manifest: { channel: "beta" } }], expect: { version: "1.0.0", final: "refused", code: "MANIFEST_CHANNEL", app0Untouched: true } },
  { name: "http-url", summary: "manifest URL is http:", releases: [{ image: V11 }], insecureManifestUrl: true, expect: { version: "1.0.0", final: "failed", code: "HTTP_INSECURE_URL", app0Untouched: true } },
  { name: "http-image-url", summary: "image URL in the manifest is http:", releases: [{ image: V11, manifest: { url: "http://127.0.0.1:1/fw.bin" } }], expect: { version: "1.0.0", final: "refused", code: "HTTP_INSECURE_URL", app0Untouched: true } },
  { name: "wrong-certificate", summary: "the host's certificate is not from the pinned CA", releases: [{ image: V11 }], wrongCa: true, expect: { version: "1.0.0", final: "failed", code: "HTTP_TLS", app0Untouched: true } },
  { name: "image-signature-missing", summary: "signature required, image unsigned", releases: [{ image: V11 }], config: { requireImageSignature: true }, expect: { version: "1.0.0", final: "failed", code: "SIG_MISSING", app0Untouched: true } },
  { name: "image-signature-rogue", summary: "image signed by an untrusted key (v1 blocks carry no key id: no trusted key verifies it)", releases: [{ image: V11, imageSignature: "rogue" }], config: { requireImageSignature: true }, expect: { version: "1.0.0", final: "failed", code: "SIG_INVALID", app0Untouched: true } },
  // A hostile host
  { name: "ignore-range", summary: "connection cut, then 200 instead of 206: restart from 0, never appended", releases: [{ image: V11 }], faults: { image: [...cutAt(20_000), { kind: "ignore-range", times: 2 /* the first, un-ranged request uses one */ }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "wrong-content-range", summary: "206 for another range: restart from 0", releases: [{ image: V11 }], faults: { image: [...cutAt(20_000), { kind: "wrong-content-range", times: 1 }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "change-etag", summary: "the image changes on the host mid-download: restart", releases: [{ image: V11 }], faults: { image: [...cutAt(30_000), { kind: "change-etag", afterBytes: 30_000 }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "range-416", summary: "416 to a Range request: restart from 0", releases: [{ image: V11 }], faults: { image: [...cutAt(20_000), { kind: "status", statuses: [200, 416] }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "cuts", summary: "connection cut at several offsets: resumed each time", releases: [{ image: V11 }], faults: { image: cutAt(5_000, 17_123, 33_333) }, config: { retry: { baseMs: 1000, maxMs: 8000, maxAttempts: 6 } }, expect: { version: "1.1.0", final: "committed" } },
  { name: "drip", summary: "one byte per second: the rate floor ends each attempt, then the cap", releases: [{ image: V11 }], faults: { image: { kind: "drip", afterBytes: 10_000 } }, config: { retry: { baseMs: 1000, maxMs: 4000, maxAttempts: 3 }, download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 2000, journalEveryBytes: 16 * 1024 } }, expect: { version: "1.0.0", final: "failed", code: "HTTP_TIMEOUT", app0Untouched: true } },
  { name: "endless-404", summary: "the image is always 404: one request, no retry loop", releases: [{ image: V11 }], faults: { image: { kind: "not-found" } }, expect: { version: "1.0.0", final: "failed", code: "HTTP_NOT_FOUND", app0Untouched: true } },
  { name: "500-then-ok", summary: "500, 503 with Retry-After, then success", releases: [{ image: V11 }], faults: { image: [{ kind: "status", statuses: [500] }, { kind: "retry-after", seconds: 7 }] }, expect: { version: "1.1.0", final: "committed" } },
  { name: "retry-cap-persists", summary: "a release that used up its attempts is not retried after a reboot (the count is in NVS)", releases: [{ image: V11 }, { image: V11 }], faults: { image: { kind: "status", statuses: [500, 500, 500, 500, 500, 500] } }, config: { retry: { baseMs: 1000, maxMs: 4000, maxAttempts: 2 } }, expect: { version: "1.0.0", final: "refused", code: "POLICY_RETRY_CAP", app0Untouched: true } },
  { name: "overlong", summary: "more bytes on the wire than Content-Length", releases: [{ image: V11 }], faults: { image: { kind: "overlong", extra: 64 } }, expect: { version: "1.1.0", final: "committed" } },
  // Per-update control that needs no broker (the signed commands: test/fleet/control.test.ts).
  { name: "bandwidth-cap", summary: "download.maxBytesPerSec 16384: the 64 KB image takes about 4 virtual s", releases: [{ image: V11 }], config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 16 * 1024, maxBytesPerSec: 16_384 } }, expect: { version: "1.1.0", final: "committed", bytesPerSec: { min: 16_384 * 0.9, max: 16_384 * 1.1 } } },
  { name: "manifest-cap", summary: "the manifest's maxBytesPerSec 8192 is below the device's 16384: the lower applies", releases: [{ image: V11, manifest: { maxBytesPerSec: 8192 } }], config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 16 * 1024, maxBytesPerSec: 16_384 } }, expect: { version: "1.1.0", final: "committed", bytesPerSec: { min: 8192 * 0.9, max: 8192 * 1.1 } } },
  { name: "reboot-when", summary: "the application's job runs until 5 min of uptime: the restart waits for it", releases: [{ image: V11 }], config: { simApp: { busyUntilMs: 300_000 } }, expect: { version: "1.1.0", final: "committed", includes: [["installing", null], ["rebooting", null], ["awaiting-reboot", null], ["rebooting", null], ["committed", null]] } },
  { name: "reboot-deadline", summary: "the application never allows the restart: it happens at reboot.deadlineMs, reported", releases: [{ image: V11 }], config: { simApp: { busyUntilMs: 1e12 }, reboot: { deadlineMs: 120_000, pollMs: 5000 } }, expect: { version: "1.1.0", final: "committed", includes: [["awaiting-reboot", null], ["rebooting", "REBOOT_DEADLINE"], ["committed", null]] } },
  // Deltas (docs/releases.md "Delta updates"): a patch from the running image, the full image as the fallback
  { name: "delta", summary: "1.0.0 -> 1.1.0 by a heatshrink patch from the running image", releases: [{ image: V11 }], delta: {}, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-none", summary: "the same with an uncompressed patch", releases: [{ image: V11 }], delta: { compression: "none" }, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-signed-image", summary: "a patch to an espsecure-signed image, signature required: the same full verification", releases: [{ image: V11, imageSignature: "trusted" }], delta: {}, config: { requireImageSignature: true }, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-not-my-base", summary: "the manifest's delta is from another base: the full image is taken", releases: [{ image: V11 }], delta: { entry: (d) => ({ ...d, from: { ...d.from, sha256: "5a".repeat(32) } }) }, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-off", summary: "config deltas: false: the full image", releases: [{ image: V11 }], delta: {}, config: { deltas: false }, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-patch-404", summary: "the patch is missing on the host: the full image instead", releases: [{ image: V11 }], delta: {}, faults: { patch: { kind: "not-found" } }, expect: { version: "1.1.0", final: "committed", saw: ["HTTP_NOT_FOUND"] } },
  { name: "delta-cuts", summary: "the patch cut on the wire at several bytes: each attempt restarts the patch from byte 0", releases: [{ image: V11 }], delta: {}, faults: { patch: cutAt(100, 1_500, 2_900) }, config: { retry: { baseMs: 1000, maxMs: 8000, maxAttempts: 6 } }, expect: { version: "1.1.0", final: "committed" } },
  { name: "delta-corrupt-wire", summary: "one byte of the served patch changed: never installed, the full image instead", releases: [{ image: V11 }], delta: { serve: (p) => flip(p, 1_000) }, expect: { version: "1.1.0", final: "committed", saw: ["DOWNLOAD_HASH"] } },
  { name: "delta-truncated-wire", summary: "the host serves the patch cut short", releases: [{ image: V11 }], delta: { serve: (p) => p.subarray(0, p.length - 200) }, expect: { version: "1.1.0", final: "committed", saw: ["DOWNLOAD_SIZE"] } },
  { name: "delta-truncated-build", summary: "a patch cut short before it was signed", releases: [{ image: V11 }], delta: { transform: (p) => p.subarray(0, p.length - 200) }, expect: { version: "1.1.0", final: "committed", saw: ["DELTA_TRUNCATED"] } },
  { name: "delta-other-base", summary: "a patch made from another image, announced for the running one", releases: [{ image: V11 }], delta: { patchFrom: { version: "0.9.0", secureVersion: 1 } }, expect: { version: "1.1.0", final: "committed", saw: ["DELTA_BASE"] } },
  { name: "delta-overrun", summary: "a patch whose output is larger than the image (and the slot would take)", releases: [{ image: V11 }], delta: { patchTo: { version: "1.1.0", secureVersion: 1, size: 96 * 1024 } }, expect: { version: "1.1.0", final: "committed", saw: ["DELTA_OVERRUN"] } },
  { name: "delta-past-end", summary: "a heatshrink stream that decodes past the patch's end", releases: [{ image: V11 }], delta: { transform: (p) => concat(p, new Uint8Array(8).fill(0x55)) }, expect: { version: "1.1.0", final: "committed", saw: ["DELTA_COMPRESSION"] } },
  { name: "overlong-declared", summary: "Content-Length larger than the manifest's size", releases: [{ image: V11 }], faults: { image: { kind: "overlong", extra: 64, declared: true } }, expect: { version: "1.0.0", final: "failed", code: "DOWNLOAD_SIZE", app0Untouched: true } },
  // The wire as other hosts speak it (host-sim/lab/wire-scenarios.ts)
  ...wireScenarios,
  ...redirectScenarios,
  ...networkScenarios,
];

function flip(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at] = c[at]! ^ 0x10;
  return c;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

const patches = new Map<string, Uint8Array>();
const builds = new Map<string, Uint8Array>();

/** A next build of `base` (cached: the power-cut sweeps run a scenario hundreds of times). */
export function nextBuildOf(base: Uint8Array, spec: ImageSpec): Uint8Array {
  const k = `${sha(base)}:${spec.version}:${spec.secureVersion ?? 1}`;
  let b = builds.get(k);
  if (!b) builds.set(k, (b = nextBuild(base, { version: spec.version, secureVersion: spec.secureVersion ?? 1 })));
  return b;
}

/** host-sim/delta's patch from `from` to `to` (cached). */
export function patchOf(from: Uint8Array, to: Uint8Array, compression: DeltaCompression): Uint8Array {
  const k = `${sha(from)}:${sha(to)}:${compression}`;
  let p = patches.get(k);
  if (!p) patches.set(k, (p = createPatch(from, to, { compression }).patch));
  return p;
}

/** Publish `spec` under `dir` with a delta from `base` (the first release of a delta scenario). */
function publishWithDelta(lab: Lab, dir: string, spec: ReleaseSpec, base: Uint8Array, d: DeltaSpec): { manifestUrl: string; imageUrl: string; patchUrl: string } {
  const target = nextBuildOf(base, spec.image);
  const release: ReleaseSpec = { ...spec, transform: () => (spec.transform ? spec.transform(target) : target) };
  const image = lab.publish(dir, release).image;
  const compression = d.compression ?? "heatshrink";
  const from = d.patchFrom ? lab.image(d.patchFrom) : base;
  let patch = patchOf(from, d.patchTo ? lab.image(d.patchTo) : image, compression);
  if (d.transform) patch = d.transform(patch);
  const patchPath = `/${dir}/patch-${spec.image.version}.bin`;
  const entry = deltaEntry({ base, patch, url: `${lab.url}${patchPath}`, compression });
  const p = lab.publish(dir, { ...release, manifest: { ...spec.manifest, deltas: [d.entry ? d.entry(entry) : entry] } });
  lab.host.setRoute(patchPath, d.serve ? d.serve(patch) : patch);
  return { manifestUrl: p.manifestUrl, imageUrl: p.imageUrl, patchUrl: `${lab.url}${patchPath}` };
}

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function readPartition(chip: SimChip, label: string): Uint8Array {
  const p = chip.partition(label);
  const out = new Uint8Array(p.byteLength);
  p.read(0, out);
  return out;
}

/** What an outcome is read from: a SimDevice, or a device on another runtime (host-sim/moddable) with its own NVS. */
export type OutcomeSource = Pick<SimDevice, "chip" | "events" | "bootRecords" | "running" | "flashOps" | "bricked"> & {
  counters: { boots: number; powerCuts: number };
  store?(): StorePort;
};

/** The comparable outcome of a device run. */
export function outcomeOf(name: string, dev: OutcomeSource): Outcome {
  const chip = dev.chip;
  const store = dev.store ? dev.store() : chip.store();
  const ota = readPartition(chip, "otadata");
  const entries = [decodeEntry(ota.subarray(0, 32)), decodeEntry(ota.subarray(OTA_SECTOR, OTA_SECTOR + 32))];
  const events: EventTuple[] = dev.events.map((e) => [e.state, e.code ?? null, e.from, e.to ?? null, e.progress ?? null]);
  const result = [...dev.events].reverse().find((e) => RESULTS.indexOf(e.state) >= 0);
  const floor = new JournalStore(store).floor();
  const dlStart = dev.events.find((e) => e.state === "downloading");
  const dlEnd = dev.events.find((e) => e.state === "verifying");
  const running = dev.running;
  return {
    scenario: name,
    running: running ? { version: running.version, slot: running.slot } : null,
    bricked: dev.bricked !== undefined,
    boots: dev.counters.boots,
    bootVersions: dev.bootRecords.map((b) => b.version),
    flashOps: dev.flashOps,
    cutHappened: dev.counters.powerCuts > 0,
    nvsCompactions: (store as { usage?(): { compactions: number } }).usage?.().compactions ?? 0,
    events,
    final: result?.state ?? null,
    code: result?.code ?? null,
    otadata: entries.map((e) => ({ seq: e.seq, state: stateName(e.state) })),
    sha256: { app0: sha(readPartition(chip, "app0")), app1: sha(readPartition(chip, "app1")), otadata: sha(ota) },
    floor,
    efuse: chip.efuseSecureVersion,
    downloadMs: dlStart && dlEnd ? dlEnd.uptime - dlStart.uptime : null,
  };
}

/** Mismatches between an outcome and what the scenario expects (empty = pass). */
export function checkOutcome(s: Scenario, o: Outcome, factoryApp0?: string): string[] {
  const bad: string[] = [];
  if (o.bricked) bad.push("device bricked");
  if (o.running?.version !== s.expect.version) bad.push(`running ${o.running?.version}, expected ${s.expect.version}`);
  if (o.final !== s.expect.final) bad.push(`final ${o.final}, expected ${s.expect.final}`);
  if (s.expect.code !== undefined && o.code !== s.expect.code) bad.push(`code ${o.code}, expected ${s.expect.code}`);
  if (s.expect.boots !== undefined && o.boots !== s.expect.boots) bad.push(`${o.boots} boots, expected ${s.expect.boots}`);
  if (s.expect.floor !== undefined && o.floor !== s.expect.floor) bad.push(`floor ${o.floor}, expected ${s.expect.floor}`);
  if (s.expect.efuse !== undefined && o.efuse !== s.expect.efuse) bad.push(`eFuse ${o.efuse}, expected ${s.expect.efuse}`);
  for (const c of s.expect.saw ?? []) if (!o.events.some((e) => e[1] === c)) bad.push(`no event with ${c}`);
  if (s.expect.app0Untouched && factoryApp0 !== undefined && o.sha256.app0 !== factoryApp0) bad.push("app0 changed");
  if (s.expect.includes) {
    let i = 0;
    for (const e of o.events) if (i < s.expect.includes.length && e[0] === s.expect.includes[i]![0] && e[1] === s.expect.includes[i]![1]) i++;
    if (i < s.expect.includes.length) bad.push(`events lack ${s.expect.includes.slice(i).map(([st, c]) => `${st}${c ? ` ${c}` : ""}`).join(", ")} (in order)`);
  }
  if (s.expect.bytesPerSec) {
    const size = s.releases[0]!.image.size ?? 64 * 1024;
    const rate = o.downloadMs ? (size * 1000) / o.downloadMs : Infinity;
    if (rate < s.expect.bytesPerSec.min || rate > s.expect.bytesPerSec.max) bad.push(`download at ${Math.round(rate)} B/s, expected ${s.expect.bytesPerSec.min}..${s.expect.bytesPerSec.max}`);
  }
  return bad;
}

export interface RunOptions {
  /** Cut power at this flash operation (counted from the first boot). */
  powerCutAt?: number;
  keep?: number;
  maxRealMs?: number;
  /** Called with the fresh chip before the first boot (e.g. to fill NVS as an application would). */
  prepare?: (chip: SimChip) => void;
  /** Another flash layout than partitions.csv (SIM's generated geometry). */
  geometry?: Geometry;
  /** Real ms of silence on held I/O before virtual time may jump (default 100; see driveUntil). */
  quietMs?: number;
}

/**
 * Publish a scenario's first release in `lab` as its hosts serve it (wire routes, redirects,
 * faults, delta) under a fresh /<name>/<run>/, and make the device's configuration: the same
 * for every runtime (runScenario here, runModdableScenario in host-sim/moddable). `overrides`
 * go under the scenario's own config (e.g. the Moddable run's short windows), `extra` over it.
 */
export function stageScenario(s: Scenario, lab: Lab, overrides: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): { dir: string; first: { manifestUrl: string; imageUrl: string }; config: Record<string, unknown> } {
  // A fresh path per run: the host's per-path fault state (bytes served, uses) starts from zero.
  const dir = `${s.name}/${lab.nextRun()}`;
  const wireImage = s.wire?.image;
  const first0 = s.releases[0]!;
  const plain = s.delta ? undefined : lab.publish(dir, wireImage ? { ...first0, manifest: { ...first0.manifest, url: `${lab.wire.url}/${dir}/fw-${first0.image.version}.bin` } } : first0);
  const first = plain ?? publishWithDelta(lab, dir, first0, lab.image(s.factory ?? FACTORY), s.delta!);
  if (plain && wireImage) {
    const path = new URL(plain.imageUrl).pathname;
    lab.wire.route(path, plain.image, wireImage);
    lab.wireOther.route(path, plain.image, (req, r) => { const h = honest(req, r); return [{ write: h.head }, { write: h.body }, { end: "fin" }]; });
  }
  if (plain && s.wire?.manifest) lab.wire.route(new URL(plain.manifestUrl).pathname, plain.envelope, s.wire.manifest);
  lab.setFault(new URL(first.imageUrl).pathname, s.faults?.image ?? null);
  lab.setFault(new URL(first.manifestUrl).pathname, s.faults?.manifest ?? null);
  if ("patchUrl" in first) lab.setFault(new URL(first.patchUrl).pathname, s.faults?.patch ?? null);
  let manifestUrl = s.wire?.manifest ? first.manifestUrl.replace(lab.url, lab.wire.url) : first.manifestUrl;
  if (s.insecureManifestUrl) manifestUrl = manifestUrl.replace(/^https:/, "http:");
  const config = lab.config(manifestUrl, { ...overrides, ...s.config, ...extra });
  if (s.trustOtherForRedirects) config.redirects = { ...(config.redirects as object | undefined), hostCas: { [new URL(lab.wireOther.url).host]: lab.otherCa.caCertPem } };
  return { dir, first, config };
}

/** Run one scenario on `engine` in `lab` (published under /<name>/<run>/). */
export async function runScenario(s: Scenario, engine: Engine, lab: Lab, options: RunOptions = {}): Promise<Outcome & { factoryApp0: string }> {
  const { dir, first, config } = stageScenario(s, lab);
  const chip = lab.chip(s.factory ?? FACTORY, options.geometry);
  if (options.prepare) {
    options.prepare(chip);
    chip.flash.resetStats();
  }
  const factoryApp0 = sha(readPartition(chip, "app0"));
  const extra: Partial<SimDeviceOptions> = { ...s.device };
  if (s.wrongCa) {
    const { NodeHttp } = await import("../engines/ports/http");
    extra.http = new NodeHttp({ ca: lab.otherCa.caCertPem, clock: lab.clock });
  }
  const dev = lab.device(engine, chip, config, extra);
  if (options.powerCutAt !== undefined) dev.powerCutAt(options.powerCutAt, options.keep);
  // A wire host inside a scripted pause (before a reset) is the host at work: virtual time must not jump meanwhile.
  const busy = () => lab.wire.pausing > 0 || lab.wireOther.pausing > 0;
  const drive = { maxVirtualMs: 6 * 3600_000, maxRealMs: options.maxRealMs ?? 30_000, quietMs: options.quietMs ?? 100, busy };
  try {
    await dev.run((d) => d.idle, drive);
    for (let i = 1; i < s.releases.length; i++) {
      const next = lab.publish(dir, s.releases[i]!);
      if (next.manifestUrl !== first.manifestUrl) throw new Error("releases of one scenario share the manifest path");
      dev.powerCycle();
      await dev.run((d) => d.idle, drive);
    }
  } finally {
    await dev.stop();
  }
  return { ...outcomeOf(s.name, dev), factoryApp0 };
}

export { Lab };
