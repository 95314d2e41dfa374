/*
 * What a scenario is: the releases, faults and device of one story, and what must hold at its end.
 * Its own module so the scenario lists (scenarios.ts, wire-, redirect-, network-scenarios.ts)
 * import the type without importing each other in a circle.
 */
import type { AgentState } from "../../modules/events";
import type { ErrorCode } from "../../modules/errors";
import type { ManifestDelta, DeltaCompression } from "../../modules/manifest";
import type { Fault } from "../../backend/update-host";
import type { WireScript } from "./wire-host";
import type { ReleaseSpec, ImageSpec } from "./lab";
import type { SimDeviceOptions } from "../chip/device";

export interface Expect {
  /** Version running at the end. */
  version: string;
  /** The last result event's state (progress and checking events aside). */
  final: AgentState;
  /** Its code, when there is one. */
  code?: ErrorCode;
  /** The factory slot (app0) must be byte-identical at the end. */
  app0Untouched?: boolean;
  /** Events (state, code) that must have happened, in this order (others in between). */
  includes?: [AgentState, ErrorCode | null][];
  /** Bounds on the download's average rate in bytes per virtual second (the bandwidth cap). */
  bytesPerSec?: { min: number; max: number };
  /** Codes some event must carry on the way (e.g. a patch's failure before the full image). */
  saw?: ErrorCode[];
  /** Boots in all (e.g. no rollback on the way). */
  boots?: number;
  /** The agent's anti-rollback floor in NVS at the end. */
  floor?: number;
  /** The chip's secure-version eFuse at the end. */
  efuse?: number;
}

/**
 * The first release as a delta from the factory image: its image is a next build of the factory
 * (host-sim/lab/next-build.ts: a new version and one changed 2 KB "module"), published with
 * its full image and a patch made by backend/delta/ (the full image stays the fallback).
 */
export interface DeltaSpec {
  compression?: DeltaCompression;
  /** Make the patch from this image instead of the factory's (a patch for another base). */
  patchFrom?: ImageSpec;
  /** Make the patch to this image instead of the release's (a patch for another target). */
  patchTo?: ImageSpec;
  /** Change the manifest's delta entry (e.g. a base the device does not run). */
  entry?: (d: ManifestDelta) => ManifestDelta;
  /** Change the patch before its entry is made (a bad patch, signed as such). */
  transform?: (patch: Uint8Array) => Uint8Array;
  /** Change what the host serves after the entry was made from the real patch. */
  serve?: (patch: Uint8Array) => Uint8Array;
}

export interface Scenario {
  name: string;
  summary: string;
  factory?: ImageSpec;
  /** Published in order; each after the previous one settled (the device is power-cycled between). */
  releases: ReleaseSpec[];
  config?: Record<string, unknown>;
  /** Faults on the image path ("image") or the manifest path ("manifest"). */
  faults?: { image?: Fault | Fault[]; manifest?: Fault | Fault[]; patch?: Fault | Fault[] };
  delta?: DeltaSpec;
  /**
   * The image and/or the manifest served by the lab's byte-controlled host instead (the same
   * bytes, framed by the script): the manifest's image URL and the device's manifest URL follow.
   */
  wire?: { image?: WireScript; manifest?: WireScript };
  /** The configuration names the lab's other CA for the wireOther host (a redirect target). */
  trustOtherForRedirects?: boolean;
  /** Config's manifestUrl as http: instead of https:. */
  insecureManifestUrl?: boolean;
  /** The device trusts another CA than the host's. */
  wrongCa?: boolean;
  device?: Partial<Pick<SimDeviceOptions, "resetOn" | "watchdogMs" | "crashAfterMs" | "freeHeap" | "hardware" | "networkUpMs" | "antiRollback" | "bootControl">>;
  expect: Expect;
}
