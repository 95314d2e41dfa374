/*
 * "xsota/feature/fleet" when the app includes features/fleet/manifest.json: the fleet reporter over
 * MQTT (modules/reporter.ts) and the device's MQTT port (src/mqtt.ts), which the platform's ports
 * (src/component/ports.ts) bind only through this module. See modules/features.ts.
 */
import type { FleetFeature } from "xsota/modules/features";
import type { MqttPort } from "xsota/modules/ports";
import { FLEET } from "xsota/modules/reporter";
import { EspMqtt } from "xsota/src/mqtt";

/** A class: its methods stay in flash (the module is preloaded with the API). */
class DeviceFleet implements FleetFeature {
  readonly startReporter = FLEET.startReporter;
  mqtt(options: { ca: ArrayBuffer }): MqttPort {
    return new EspMqtt(options);
  }
}

const fleet: FleetFeature | null = Object.freeze(new DeviceFleet());
export default fleet;
