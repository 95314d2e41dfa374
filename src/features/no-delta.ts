/*
 * "xsota/feature/delta" in the core (manifest.json): delta updates are not included, so a release is
 * always fetched as its full image. features/delta/manifest.json maps the specifier to the real one
 * and drops this file ("~"). See modules/features.ts.
 */
import type { DeltaFeature } from "xsota/modules/features";

const delta: DeltaFeature | null = null;
export default delta;
