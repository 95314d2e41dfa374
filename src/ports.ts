/*
 * Every port of modules/ports.ts bound to Moddable on the ESP32, in one place.
 */
import type { Ports } from "../modules/ports";
import { EspFlashPort } from "./flash";
import { PreferenceStore } from "./store";
import { EspHttp } from "./http";
import { ModdableCrypto } from "./crypto";
import { EspMqtt } from "./mqtt";
import { ModdableClock } from "./clock";
import { EspSystem } from "./system";

export interface DevicePortsOptions {
  /** DER of the CA pinned for the update host (and the broker when `mqttCa` is absent). */
  ca: ArrayBuffer;
  mqttCa?: ArrayBuffer;
  /** With a broker configured, the MQTT port is bound too. */
  mqtt: boolean;
  /** Board revision to report instead of the chip's. */
  hardware?: string;
}

export function createDevicePorts(options: DevicePortsOptions): Ports {
  const ports: Ports = {
    flash: new EspFlashPort(),
    store: new PreferenceStore(),
    http: new EspHttp({ ca: options.ca }),
    crypto: new ModdableCrypto(),
    clock: new ModdableClock(),
    system: new EspSystem(options.hardware ? { hardware: options.hardware } : {}),
  };
  if (options.mqtt) ports.mqtt = new EspMqtt({ ca: options.mqttCa ?? options.ca });
  return ports;
}
