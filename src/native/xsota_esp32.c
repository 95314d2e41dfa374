/*
 * Native glue for the xsota agent on ESP32 (module "src/native/esp32", see esp32.js).
 *
 * Moddable exposes the running and next OTA partitions only as opaque Flash objects
 * (modules/files/flash/esp32/flash.c, modules/io/flash/esp32/flash-esp32.c), never their
 * index, and has no restart/heap/chip call outside the full ECMA-419 IO host. These are
 * the few ESP-IDF calls the agent needs; each is one line.
 *
 * Slot indexes are ota_N numbers (subtype - ESP_PARTITION_SUBTYPE_APP_OTA_MIN); -1 means
 * "not an OTA slot" (factory app) or "none". ESP_PARTITION_SUBTYPE_APP_OTA_MAX is one past
 * ota_15 (MIN + 16, the value of ESP_PARTITION_SUBTYPE_APP_TEST), hence >=.
 */

#include "xsmc.h"
#include "xsHost.h"
#include "sdkconfig.h"
#include "xsota_sdkconfig_check.h"	/* stops the build when the app's sdkconfig lacks an option the agent relies on */

#include "esp_system.h"
#include "esp_chip_info.h"
#include "esp_partition.h"
#include "esp_mac.h"
#include "app_update/include/esp_ota_ops.h"

static int slotOf(const esp_partition_t *partition)
{
	if (!partition || (ESP_PARTITION_TYPE_APP != partition->type))
		return -1;
	if ((partition->subtype < ESP_PARTITION_SUBTYPE_APP_OTA_MIN) || (partition->subtype >= ESP_PARTITION_SUBTYPE_APP_OTA_MAX))
		return -1;
	return partition->subtype - ESP_PARTITION_SUBTYPE_APP_OTA_MIN;
}

/* esp_ota_get_running_partition: the slot the bootloader really booted, not otadata's choice */
void xs_xsota_running_slot(xsMachine *the)
{
	xsmcSetInteger(xsResult, slotOf(esp_ota_get_running_partition()));
}

/* esp_ota_get_next_update_partition(NULL): the slot after the running one, as Flash("nextota") opens */
void xs_xsota_next_slot(xsMachine *the)
{
	xsmcSetInteger(xsResult, slotOf(esp_ota_get_next_update_partition(NULL)));
}

void xs_xsota_slot_count(xsMachine *the)
{
	xsmcSetInteger(xsResult, esp_ota_get_app_partition_count());
}

void xs_xsota_restart(xsMachine *the)
{
	esp_restart();
}

void xs_xsota_free_heap(xsMachine *the)
{
	xsmcSetInteger(xsResult, (xsIntegerValue)esp_get_free_heap_size());
}

/* chip revision as ESP-IDF 5 reports it: major * 100 + minor */
void xs_xsota_chip_revision(xsMachine *the)
{
	esp_chip_info_t info;
	esp_chip_info(&info);
	xsmcSetInteger(xsResult, info.revision);
}

/* the chip id esp_image_header_t carries for images built for this target (ESP32 = 0) */
void xs_xsota_chip_id(xsMachine *the)
{
	xsmcSetInteger(xsResult, CONFIG_IDF_FIRMWARE_CHIP_ID);
}

/*
 * the Wi-Fi station MAC (the factory base MAC from eFuse), as 12 lower-case hex digits: there without any
 * network interface. esp_read_mac writes 6 bytes for ESP_MAC_WIFI_STA; esp_efuse_mac_get_default writes 8
 * on chips with 802.15.4 (C5, C6, H2), past this buffer.
 */
void xs_xsota_base_mac(xsMachine *the)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[6];
	char text[13];
	int i;

	if (ESP_OK != esp_read_mac(mac, ESP_MAC_WIFI_STA))
		xsUnknownError("no base MAC in eFuse");
	for (i = 0; i < 6; i++) {
		text[i * 2] = hex[mac[i] >> 4];
		text[i * 2 + 1] = hex[mac[i] & 15];
	}
	text[12] = 0;
	xsmcSetString(xsResult, text);
}

/*
 * CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK of this build (the bootloader is built from the same sdkconfig):
 * the agent's anti-rollback mode follows it (modules/config.ts antiRollbackOfBuild).
 */
void xs_xsota_anti_rollback(xsMachine *the)
{
#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
	xsmcSetTrue(xsResult);
#else
	xsmcSetFalse(xsResult);
#endif
}

/*
 * Boot control through ESP-IDF's own functions (src/boot.ts binds them as the agent's BootControlPort):
 * each returns the esp_err_t (ESP_OK = 0) and src/boot.ts maps it to an OtaError code.
 */

/* esp_ota_set_boot_partition(ota_<slot>); ESP_ERR_NOT_FOUND when there is no such slot */
void xs_xsota_set_boot_slot(xsMachine *the)
{
	int slot = xsmcToInteger(xsArg(0));
	const esp_partition_t *partition = NULL;

	if ((slot >= 0) && (slot < (ESP_PARTITION_SUBTYPE_APP_OTA_MAX - ESP_PARTITION_SUBTYPE_APP_OTA_MIN)))
		partition = esp_partition_find_first(ESP_PARTITION_TYPE_APP, ESP_PARTITION_SUBTYPE_APP_OTA_MIN + slot, NULL);
	xsmcSetInteger(xsResult, partition ? esp_ota_set_boot_partition(partition) : ESP_ERR_NOT_FOUND);
}

void xs_xsota_mark_valid(xsMachine *the)
{
	xsmcSetInteger(xsResult, esp_ota_mark_app_valid_cancel_rollback());
}

/* without the restart: the agent journals first, then restarts */
void xs_xsota_mark_invalid(xsMachine *the)
{
	xsmcSetInteger(xsResult, esp_ota_mark_app_invalid_rollback());
}

void xs_xsota_rollback_possible(xsMachine *the)
{
	xsmcSetBoolean(xsResult, esp_ota_check_rollback_is_possible());
}

/*
 * esp_ota_get_state_partition of the running partition: the state (esp_ota_img_states_t, 0..4, or
 * ESP_OTA_IMG_UNDEFINED as 4294967295) when ESP_OK, else minus the esp_err_t.
 */
void xs_xsota_running_state(xsMachine *the)
{
	esp_ota_img_states_t state;
	esp_err_t err = esp_ota_get_state_partition(esp_ota_get_running_partition(), &state);

	if (ESP_OK == err)
		xsmcSetNumber(xsResult, (double)(uint32_t)state);
	else
		xsmcSetInteger(xsResult, -err);
}
