/*
 * StorePort on NVS through the classic "preference" module (modules/files/preference/esp32/modPreference.c).
 * Moddable rejects floats and non-ArrayBuffer objects; the limits below turn that into named codes.
 * Caution, from modPreference.c: set() erases the key before writing it (an IDF type-change
 * workaround), so on the chip a power cut inside set() can lose that key; the simulator's
 * store is atomic per set. Callers must tolerate a missing key after a reset.
 */
import Preference from "preference";
import type { StorePort, StoreValue } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { utf8Encode } from "../modules/bytes";

const MAX_NAME = 15;
/** nvs_set_str's limit is 4000 bytes including the terminating NUL: 3999 bytes of UTF-8. */
const MAX_STRING = 3999;
/** Moddable's documented limit for an ArrayBuffer value (nvs_set_blob itself takes more). */
const MAX_BUFFER = 4000;

function checkName(domain: string, key?: string): void {
  if (domain.length === 0 || domain.length > MAX_NAME) throw new OtaError("STORE_KEY", `domain "${domain}"`);
  if (key !== undefined && (key.length === 0 || key.length > MAX_NAME)) throw new OtaError("STORE_KEY", `key "${key}"`);
}

function checkValue(value: StoreValue): void {
  if (typeof value === "number" && !(Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff))
    throw new OtaError("STORE_VALUE", `${value} is not a 32-bit integer`);
  if (typeof value === "string" && utf8Encode(value).length > MAX_STRING) throw new OtaError("STORE_VALUE", `string over ${MAX_STRING} bytes`);
  if (value instanceof ArrayBuffer && value.byteLength > MAX_BUFFER) throw new OtaError("STORE_VALUE", `buffer over ${MAX_BUFFER} bytes`);
}

export class PreferenceStore implements StorePort {
  get(domain: string, key: string): StoreValue | undefined {
    checkName(domain, key);
    return Preference.get(domain, key);
  }
  set(domain: string, key: string, value: StoreValue): void {
    checkName(domain, key);
    checkValue(value);
    try {
      Preference.set(domain, key, value);
    } catch (e) {
      throw new OtaError("STORE_FULL", `${domain}/${key}: ${String(e)}`);
    }
  }
  delete(domain: string, key: string): void {
    checkName(domain, key);
    Preference.delete(domain, key);
  }
  keys(domain: string): string[] {
    checkName(domain);
    return Preference.keys(domain);
  }
}
