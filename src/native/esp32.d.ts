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
