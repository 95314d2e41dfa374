/*
 * "xsota/feature/control" in the core (manifest.json): update control is not included, so no
 * bandwidth cap and no pause / resume / cancel / download-only / install (a command is refused,
 * CONTROL_STATE). features/control/manifest.json maps the specifier to the real one and drops this
 * file ("~"). See modules/features.ts.
 */
import type { ControlFeature } from "xsota/modules/features";

const control: ControlFeature | null = null;
export default control;
