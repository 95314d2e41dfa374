/// <reference path="./types/moddable.d.ts" />
/*
 * SystemPort on the ESP32: restart, heap and chip facts from src/native (esp_restart,
 * esp_get_free_heap_size, esp_chip_info, esp_read_mac), the reset reason from
 * Moddable's esp32 "resetReason" module (build/devices/esp32/modules/resetReason: esp_reset_reason()).
 * The device id is the factory base MAC from eFuse, not Net.get("MAC"): that is undefined until
 * an interface exists, and the self-test runs before Wi-Fi is up. The Wi-Fi station's MAC is
 * the base MAC (ESP-IDF's default), so the id is the same one the network shows.
 */
import getResetReason from "resetReason";
import type { ResetReason, SystemPort } from "../modules/ports";
import { baseMac, chipId, chipRevision, freeHeap, restart } from "./native/esp32";
import { constant } from "../modules/constant";

/** esp_reset_reason_t (esp_system.h) -> the port's names. */
const REASONS: readonly ResetReason[] = constant([
  "unknown", // ESP_RST_UNKNOWN
  "power-on", // ESP_RST_POWERON
  "unknown", // ESP_RST_EXT (external pin)
  "software", // ESP_RST_SW (esp_restart)
  "panic", // ESP_RST_PANIC
  "watchdog", // ESP_RST_INT_WDT
  "watchdog", // ESP_RST_TASK_WDT
  "watchdog", // ESP_RST_WDT
  "unknown", // ESP_RST_DEEPSLEEP
  "brownout", // ESP_RST_BROWNOUT
  "unknown", // ESP_RST_SDIO
]);

export interface EspSystemOptions {
  /** Board revision to report; default from the chip: "esp32-rev<major>[.<minor>]". */
  hardware?: string;
}

export class EspSystem implements SystemPort {
  readonly #hardware: string | undefined;
  constructor(options: EspSystemOptions = {}) {
    this.#hardware = options.hardware;
  }
  restart(reason: string): void {
    trace(`xsota: restart (${reason})\n`);
    restart();
  }
  resetReason(): ResetReason {
    return REASONS[getResetReason().reason] ?? "unknown";
  }
  deviceId(): string {
    return baseMac();
  }
  hardwareRevision(): string {
    if (this.#hardware) return this.#hardware;
    const rev = chipRevision(); // v3.0 -> "esp32-rev3", v3.1 -> "esp32-rev3.1"
    return `esp32-rev${Math.floor(rev / 100)}${rev % 100 ? `.${rev % 100}` : ""}`;
  }
  chipId(): number {
    return chipId();
  }
  freeHeap(): number {
    return freeHeap();
  }
  log(line: string): void {
    trace(line, "\n");
  }
}
