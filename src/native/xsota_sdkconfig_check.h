/*
 * The ESP-IDF options the xsota agent relies on, checked where the app is compiled.
 *
 * Include right after sdkconfig.h (xsota_esp32.c does). A board subplatform (-p esp32/<board>)
 * may set its own SDKCONFIGPATH, which replaces the project's sdkconfig/ and with it the lines
 * below; the build then stops here, naming the option and the line to merge into the board's
 * sdkconfig.defaults, instead of flashing an agent that cannot roll back.
 *
 * sdkconfig.h (ESP-IDF's kconfgen) defines an enabled bool as 1 and leaves a disabled one out,
 * so "on" is defined() and "off" is !defined(). GCC reports every #error of a file, so one build
 * lists every missing line. test/device/sdkconfig-guard.test.ts preprocesses this header with
 * sdkconfig.h files generated from the project's sdkconfig and from every plain-ESP32 board's.
 */
#ifndef XSOTA_SDKCONFIG_CHECK_H
#define XSOTA_SDKCONFIG_CHECK_H

#ifndef CONFIG_IDF_TARGET
	#error "xsota_sdkconfig_check.h: include sdkconfig.h first"
#endif

/* The bootloader turns a NEW image into PENDING_VERIFY for one boot and an unconfirmed one into
   ABORTED at the next, then boots the other slot. Without it a bad image stays. */
#if !defined(CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE)
	#error "xsota needs CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y in the app's sdkconfig (without it the bootloader never rolls a bad image back)"
#endif

/* A skipped validation boots a corrupt slot instead of falling back from it (Moddable's base sdkconfig
   skips it always; ESP_IMAGE_LOAD_NO_VALIDATE in bootloader_support/src/esp_image_format.c). */
#if defined(CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS)
	#error "xsota needs CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS=n in the app's sdkconfig (the bootloader must validate an image before booting it, or it cannot fall back from a corrupt slot)"
#endif
#if defined(CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON)
	#error "xsota needs CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON=n in the app's sdkconfig (the bootloader must validate an image at power-on too, or it boots a corrupt slot)"
#endif

/* A new image that hangs must reset so that the bootloader can roll it back: the task watchdog,
   started at boot, panicking, with a timeout longer than one XS turn (a TLS handshake in
   JavaScript runs for seconds). */
#if !defined(CONFIG_ESP_TASK_WDT_EN)
	#error "xsota needs CONFIG_ESP_TASK_WDT_EN=y in the app's sdkconfig (the task watchdog resets a hung image so that it can be rolled back)"
#endif
#if !defined(CONFIG_ESP_TASK_WDT_INIT)
	#error "xsota needs CONFIG_ESP_TASK_WDT_INIT=y in the app's sdkconfig (the task watchdog must run from boot: nothing else starts it)"
#endif
#if !defined(CONFIG_ESP_TASK_WDT_PANIC)
	#error "xsota needs CONFIG_ESP_TASK_WDT_PANIC=y in the app's sdkconfig (a watchdog timeout must reset the chip, not only log, for a hung image to be rolled back)"
#endif
#if defined(CONFIG_ESP_TASK_WDT_TIMEOUT_S) && (CONFIG_ESP_TASK_WDT_TIMEOUT_S < 30)
	#error "xsota needs CONFIG_ESP_TASK_WDT_TIMEOUT_S=30 (or more) in the app's sdkconfig (one XS turn, a TLS handshake in JavaScript, can run for seconds; a shorter watchdog resets a good image and rolls it back)"
#endif

/* A task that leaves interrupts off, or an ISR that never returns, stops the tick the task watchdog
   runs on: the interrupt watchdog (off in Moddable's base sdkconfig) panics instead. */
#if !defined(CONFIG_ESP_INT_WDT)
	#error "xsota needs CONFIG_ESP_INT_WDT=y in the app's sdkconfig (a hang with interrupts off escapes the task watchdog; the interrupt watchdog resets it)"
#endif

/* A panic must end in a reset: halting (in the GDB stub or after printing) leaves a hung new image
   running until someone resets the board by hand. */
#if defined(CONFIG_ESP_SYSTEM_PANIC_GDBSTUB)
	#error "xsota needs CONFIG_ESP_SYSTEM_PANIC_GDBSTUB=n and CONFIG_ESP_SYSTEM_PANIC_PRINT_REBOOT=y in the app's sdkconfig (a hung image would halt in the GDB stub instead of resetting and rolling back)"
#endif
#if defined(CONFIG_ESP_SYSTEM_PANIC_PRINT_HALT)
	#error "xsota needs CONFIG_ESP_SYSTEM_PANIC_PRINT_HALT=n and CONFIG_ESP_SYSTEM_PANIC_PRINT_REBOOT=y in the app's sdkconfig (a hung image would halt after the panic instead of resetting and rolling back)"
#endif

/* With ESP-IDF's anti-rollback on (sdkconfig/anti-rollback.defaults), the image's own secure_version must
   fit the eFuse field: esp_efuse_update_secure_version refuses a larger one (ESP_ERR_INVALID_ARG), so
   the floor would never rise to it. */
#if defined(CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK) && (CONFIG_BOOTLOADER_APP_SECURE_VERSION > CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD)
	#error "xsota needs CONFIG_BOOTLOADER_APP_SECURE_VERSION <= CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD (a larger secure_version can never be written to the eFuse)"
#endif

/* The partition table carries its MD5 row, as the simulator's binary table does (Moddable's base
   turns it off). */
#if !defined(CONFIG_PARTITION_TABLE_MD5)
	#error "xsota needs CONFIG_PARTITION_TABLE_MD5=y in the app's sdkconfig (the partition table must carry its MD5 row)"
#endif

/* The agent reads its version from esp_app_desc_t of the running partition; from anything but
   the config (git describe, "1") the server would see a version it never released and offer the
   same update again. */
#if !defined(CONFIG_APP_PROJECT_VER_FROM_CONFIG)
	#error "xsota needs CONFIG_APP_PROJECT_VER_FROM_CONFIG=y and CONFIG_APP_PROJECT_VER=\"<manifest config.version>\" in the app's sdkconfig (the agent reports the version in esp_app_desc_t)"
#endif

/* With flash encryption every write must be 16-byte aligned in offset and length; the last block
   of an image (a v1 signature adds 68 bytes) is not, and src/flash.ts does not pad it. */
#if defined(CONFIG_SECURE_FLASH_ENC_ENABLED)
	#error "xsota needs CONFIG_SECURE_FLASH_ENC_ENABLED=n in the app's sdkconfig (with flash encryption writes must be padded to 16 bytes, which src/flash.ts does not do yet)"
#endif

#endif /* XSOTA_SDKCONFIG_CHECK_H */
