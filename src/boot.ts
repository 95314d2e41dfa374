/*
 * BootControlPort on the ESP32: ESP-IDF's own esp_ota_ops functions through src/native (esp32.js),
 * so the device never depends on our reading of the otadata format (modules/bootctl.ts stays the
 * simulator's model, held equal to IDF v6.0's C by test/device/idf-otadata-diff.test.ts). Each native
 * returns the esp_err_t; ESP_ERRORS maps it to the agent's OtaError codes.
 */
import type { BootControlPort } from "../modules/ports";
import { OtaError, type ErrorCode } from "../modules/errors";
import { constant } from "../modules/constant";
import { markInvalid, markValid, rollbackPossible, runningState, setBootSlot } from "./native/esp32";

/** esp_err_t values (esp_err.h, esp_ota_ops.h, esp_flash.h / spi_flash) -> OtaError codes. */
export const ESP_ERRORS: readonly (readonly [err: number, name: string, code: ErrorCode])[] = constant([
  [-1, "ESP_FAIL", "OTADATA_STATE"], // mark valid/invalid with no active entry ("running firmware is factory")
  [0x105, "ESP_ERR_NOT_FOUND", "FLASH_NO_PARTITION"], // no otadata partition
  [0x1502, "ESP_ERR_OTA_SELECT_INFO_INVALID", "OTADATA_CORRUPT"],
  [0x1503, "ESP_ERR_OTA_VALIDATE_FAILED", "IMAGE_HASH"], // esp_image_verify of the slot failed
  [0x1504, "ESP_ERR_OTA_SMALL_SEC_VER", "POLICY_DOWNGRADE"], // secure_version below the eFuse (anti-rollback on)
  [0x1505, "ESP_ERR_OTA_ROLLBACK_FAILED", "CONFIRM_NO_ROLLBACK"],
  [0x1506, "ESP_ERR_OTA_ROLLBACK_INVALID_STATE", "OTADATA_STATE"],
  [0x6001, "ESP_ERR_FLASH_OP_FAIL", "OTADATA_WRITE"],
  [0x6002, "ESP_ERR_FLASH_OP_TIMEOUT", "OTADATA_WRITE"],
]);

const ESP_OK = 0;
const ESP_ERR_INVALID_ARG = 0x102;
const ESP_ERR_NOT_FOUND = 0x105;
const ESP_ERR_NOT_SUPPORTED = 0x106;

function hex(err: number): string {
  return err < 0 ? `-0x${(-err).toString(16)}` : `0x${err.toString(16)}`;
}

/** Nothing for ESP_OK; RangeError for ESP_ERR_INVALID_ARG; else the OtaError of ESP_ERRORS (OTADATA_WRITE for one not listed). */
export function checkEsp(err: number, call: string): void {
  if (err === ESP_OK) return;
  if (err === ESP_ERR_INVALID_ARG) throw new RangeError(`${call}: ESP_ERR_INVALID_ARG`);
  for (const [e, name, code] of ESP_ERRORS) if (e === err) throw new OtaError(code, `${call}: ${name}`);
  throw new OtaError("OTADATA_WRITE", `${call}: esp_err_t ${hex(err)}`);
}

export class EspBootControl implements BootControlPort {
  /** undefined for ESP_ERR_NOT_FOUND (no entry selects the running slot) and ESP_ERR_NOT_SUPPORTED (not an OTA slot). */
  runningState(): number | undefined {
    const r = runningState();
    if (r >= 0) return r;
    const err = -r;
    if (err === ESP_ERR_NOT_FOUND || err === ESP_ERR_NOT_SUPPORTED) return undefined;
    checkEsp(err, "esp_ota_get_state_partition");
    return undefined;
  }

  setBootSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot > 15) throw new RangeError(`no OTA slot ${slot}`);
    const err = setBootSlot(slot);
    if (err === ESP_ERR_NOT_FOUND) throw new RangeError(`no OTA slot ${slot}`);
    checkEsp(err, "esp_ota_set_boot_partition");
  }

  rollbackPossible(): boolean {
    return rollbackPossible();
  }

  markValid(): void {
    checkEsp(markValid(), "esp_ota_mark_app_valid_cancel_rollback");
  }

  markInvalid(): void {
    checkEsp(markInvalid(), "esp_ota_mark_app_invalid_rollback");
  }
}
