/*
 * "xsota/feature/fleet" in the core (manifest.json): the fleet feature is not included, so no
 * reporter and no MQTT port (config.xsota.mqtt is then only logged). features/fleet/manifest.json
 * maps the specifier to the real one and drops this file ("~"). See modules/features.ts.
 */
import type { FleetFeature } from "xsota/modules/features";

const fleet: FleetFeature | null = null;
export default fleet;
