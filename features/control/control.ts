/*
 * "xsota/feature/control" when the app includes features/control/manifest.json: the bandwidth cap,
 * pause / resume / cancel / download-only / install (modules/control.ts, modules/agent-control.ts).
 * See modules/features.ts.
 */
import type { ControlFeature } from "xsota/modules/features";
import { CONTROL } from "xsota/modules/agent-control";

const control: ControlFeature | null = CONTROL;
export default control;
