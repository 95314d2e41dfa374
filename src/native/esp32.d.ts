/** Types of esp32.js (host functions in xsota_esp32.c). Slot indexes are ota_N numbers; -1 = none/factory. */
export declare function runningSlot(): number;
export declare function nextSlot(): number;
export declare function slotCount(): number;
export declare function restart(): never;
export declare function freeHeap(): number;
/** esp_chip_info().revision: major * 100 + minor. */
export declare function chipRevision(): number;
/** CONFIG_IDF_FIRMWARE_CHIP_ID (ESP32 = 0), the chip id in esp_image_header_t. */
export declare function chipId(): number;
/** esp_read_mac(ESP_MAC_WIFI_STA): the Wi-Fi station MAC (the factory base MAC) as 12 lower-case hex digits. */
export declare function baseMac(): string;
/** CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK in the sdkconfig this app (and its bootloader) was built with. */
export declare function antiRollback(): boolean;
/** esp_ota_set_boot_partition(ota_<slot>): the esp_err_t (ESP_ERR_NOT_FOUND: no such slot). */
export declare function setBootSlot(slot: number): number;
/** esp_ota_mark_app_valid_cancel_rollback(): the esp_err_t. */
export declare function markValid(): number;
/** esp_ota_mark_app_invalid_rollback() (no restart): the esp_err_t. */
export declare function markInvalid(): number;
/** esp_ota_check_rollback_is_possible(). */
export declare function rollbackPossible(): boolean;
/** esp_ota_get_state_partition(running): the state (0..4, 4294967295 UNDEFINED) when ESP_OK, else minus the esp_err_t. */
export declare function runningState(): number;
