/*
 * "xsota/feature/delta" when the app includes features/delta/manifest.json: a release's patch
 * against the running image (modules/delta-download.ts, modules/delta/). See modules/features.ts.
 */
import type { DeltaFeature } from "xsota/modules/features";
import { DELTA } from "xsota/modules/delta-download";

const delta: DeltaFeature | null = DELTA;
export default delta;
