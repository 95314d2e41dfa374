/*
 * Every port of modules/ports.ts bound to Moddable on the ESP32, in one place: the module
 * "xsota/platform" that the API (src/component/xsota.ts) asks for its ports. Moddable's runtime
 * for Linux maps the same specifier to moddable-host/platform/ports.ts. Imports are "xsota/...": XS
 * resolves relative ones from the module's name, which is not this file's folder.
 */
import type { Ports } from "xsota/modules/ports";
import { EspFlashPort } from "xsota/src/flash";
import { PreferenceStore } from "xsota/src/store";
import { EspHttp } from "xsota/src/http";
import { ModdableCrypto } from "xsota/src/crypto";
import { ModdableClock } from "xsota/src/clock";
import { EspSystem } from "xsota/src/system";
import { EspBootControl } from "xsota/src/boot";
import { antiRollback } from "xsota/src/native/esp32";
// the agent's own MQTT connection is the fleet feature's (features/fleet/manifest.json)
import fleet from "xsota/feature/fleet";

export interface DevicePortsOptions {
  /** DER of the CA pinned for the update host (and the broker when `mqttCa` is absent). */
  ca: ArrayBuffer;
  mqttCa?: ArrayBuffer;
  /** With a broker configured, the MQTT port is bound too (when the fleet feature is included). */
  mqtt: boolean;
  /** Board revision to report instead of the chip's. */
  hardware?: string;
}

export function createDevicePorts(options: DevicePortsOptions): Ports {
  const ports: Ports = {
    // ESP-IDF's esp_ota_* do the boot-control steps on the chip (issue 30, item 3)
    boot: new EspBootControl(),
    flash: new EspFlashPort(),
    store: new PreferenceStore(),
    http: new EspHttp({ ca: options.ca }),
    crypto: new ModdableCrypto(),
    clock: new ModdableClock(),
    system: new EspSystem(options.hardware ? { hardware: options.hardware } : {}),
  };
  if (options.mqtt && fleet && fleet.mqtt) ports.mqtt = fleet.mqtt({ ca: options.mqttCa ?? options.ca });
  return ports;
}

/** CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK of this build: the agent's anti-rollback mode (modules/config.ts antiRollbackOfBuild). */
export function buildAntiRollback(): boolean {
  return antiRollback();
}
