/*
 * Issue 30, item 3: the boot-control port (modules/ports.ts BootControlPort). One contract, run
 * against both bindings on the simulated chip:
 *  - modules/bootctl.ts FlashBootControl, the TypeScript model over FlashPort (simulator, Moddable's
 *    Linux runtime);
 *  - src/boot.ts EspBootControl, the ESP32 binding, over a fake of src/native/esp32 whose functions
 *    answer as ESP-IDF v6.0's do (esp_err_t values; otadata by modules/bootctl.ts's BootControl, which
 *    test/device/idf-otadata-diff.test.ts holds equal to IDF's C, and IDF's own rollback rule).
 * Then: the esp_err_t -> OtaError map against the numbers in ../shared/esp-idf's headers; the one
 * case where the two bindings decide differently (a torn first-boot otadata write); and whole updates
 * (commit, rollback) with the agent's boot-control steps routed through EspBootControl and its native,
 * equal byte for byte to the run without it. Not here: the real native on a chip (docs/esp32.md "Boot control
 * on the chip").
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Lab, writeImage } from "../../host-sim/lab/lab";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { scenarios, runScenario } from "../../host-sim/lab/scenarios";
import { nodeCrypto } from "../../backend/crypto";
import type { SimChip } from "../../host-sim/chip/chip";
import { BootControl, FACTORY_SLOT, FlashBootControl } from "../../modules/bootctl";
import { OtaState, encodeEntry, OTA_SECTOR } from "../../modules/otadata";
import { validateImage } from "../../modules/image";
import { codeOf as errorCodeOf } from "../../modules/errors";
import type { BootControlPort, FlashPort } from "../../modules/ports";
import { codeOf } from "../codes";

/** The native as the test sets it: each call goes to `impl`, and is counted. */
const native = vi.hoisted(() => ({ impl: undefined as undefined | Record<string, (...a: number[]) => number | boolean>, calls: [] as string[] }));
vi.mock("../../src/native/esp32", () => {
  const call = (name: string) => (...args: number[]) => {
    native.calls.push(name);
    return native.impl![name]!(...args);
  };
  return { setBootSlot: call("setBootSlot"), markValid: call("markValid"), markInvalid: call("markInvalid"), rollbackPossible: call("rollbackPossible"), runningState: call("runningState") };
});
// Through a computed path: the Node-side tsc (tsconfig.json) must not follow it into src/.
const { EspBootControl, ESP_ERRORS, checkEsp } = (await import(/* @vite-ignore */ `../../src/${"boot"}`)) as {
  EspBootControl: new () => BootControlPort;
  ESP_ERRORS: readonly (readonly [number, string, string])[];
  checkEsp(err: number, call: string): void;
};

const ESP_FAIL = -1, ESP_ERR_NOT_FOUND = 0x105, ESP_ERR_OTA_VALIDATE_FAILED = 0x1503, ESP_ERR_OTA_ROLLBACK_FAILED = 0x1505, ESP_ERR_FLASH_OP_FAIL = 0x6001;

/** src/native/esp32 as ESP-IDF v6.0 answers on this chip, booted from the slot of `flash`. */
function idfNative(chip: SimChip, flash: FlashPort): Record<string, (...a: number[]) => number | boolean> {
  const model = new BootControl(flash);
  // image_validate / esp_image_verify of a slot (no factory app in this table)
  const canBoot = (slot: number) => {
    if (slot === FACTORY_SLOT) return false;
    try {
      const p = chip.slot(slot);
      validateImage((o, t) => p.read(o, t), p.byteLength, nodeCrypto, new Uint8Array(4096));
      return true;
    } catch {
      return false;
    }
  };
  const err = (e: unknown): number => {
    const code = errorCodeOf(e);
    if (code === "OTADATA_STATE") return ESP_FAIL;
    if (code === "OTADATA_WRITE" || code?.startsWith("FLASH_")) return ESP_ERR_FLASH_OP_FAIL;
    throw e;
  };
  return {
    setBootSlot: (slot) => {
      if (slot >= flash.slots().count) return ESP_ERR_NOT_FOUND;
      if (!canBoot(slot)) return ESP_ERR_OTA_VALIDATE_FAILED;
      try {
        model.setBootSlot(slot);
        return 0;
      } catch (e) {
        return err(e);
      }
    },
    markValid: () => {
      try {
        model.markActive(OtaState.VALID);
        return 0;
      } catch (e) {
        return err(e);
      }
    },
    markInvalid: () => {
      try {
        return model.markInvalid(canBoot) ? 0 : ESP_ERR_OTA_ROLLBACK_FAILED;
      } catch (e) {
        return err(e);
      }
    },
    rollbackPossible: () => model.rollbackPossible(canBoot),
    runningState: () => model.runningState() ?? -ESP_ERR_NOT_FOUND,
  };
}

let lab: Lab;
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

type Entry = [seq: number, state: number] | null | "torn";
/** A chip with 1.0.0 in app0 and 1.1.0 in app1 (unless `app1` is null), otadata as given. */
function chipWith(a: Entry, b: Entry, app1: boolean = true): SimChip {
  const chip = lab.chip();
  if (app1) writeImage(chip, "app1", lab.image({ version: "1.1.0" }));
  const ota = chip.partition("otadata");
  for (const [i, e] of [a, b].entries()) {
    ota.eraseBlock(i);
    if (e === "torn") ota.write(i * OTA_SECTOR, encodeEntry(1, OtaState.VALID).subarray(0, 8)); // seq written, CRC not
    else if (e) ota.write(i * OTA_SECTOR, encodeEntry(e[0], e[1]));
  }
  return chip;
}

const entries = (chip: SimChip) => new BootControl(chip.flashPort(0)).read().entries.map((e) => [e.seq, e.state]);

const BINDINGS: [name: string, make: (chip: SimChip, running: number) => BootControlPort][] = [
  ["FlashBootControl (modules/bootctl.ts over FlashPort)", (chip, running) => new FlashBootControl(chip.flashPort(running), nodeCrypto, () => 0, new Uint8Array(4096))],
  ["EspBootControl (src/boot.ts over the native, faked as ESP-IDF answers)", (chip, running) => {
    native.impl = idfNative(chip, chip.flashPort(running));
    return new EspBootControl();
  }],
];

describe.each(BINDINGS)("BootControlPort contract: %s", (_name, make) => {
  it("runningState: esp_ota_get_state_partition of the running slot; undefined when no entry selects it", () => {
    expect(make(chipWith(null, null), 0).runningState()).toBeUndefined();
    expect(make(chipWith([1, OtaState.VALID], null), 0).runningState()).toBe(OtaState.VALID);
    expect(make(chipWith([1, OtaState.VALID], [2, OtaState.PENDING_VERIFY]), 1).runningState()).toBe(OtaState.PENDING_VERIFY);
    expect(make(chipWith([1, OtaState.VALID], null), 1).runningState()).toBeUndefined();
  });

  it("setBootSlot: esp_ota_set_boot_partition, the next seq NEW in the other sector; RangeError for no such slot", () => {
    const chip = chipWith([1, OtaState.VALID], null);
    const boot = make(chip, 0);
    boot.setBootSlot(1);
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [2, OtaState.NEW]]);
    expect(boot.runningState()).toBe(OtaState.VALID);
    expect(() => boot.setBootSlot(2)).toThrow(RangeError);
    expect(() => boot.setBootSlot(-1)).toThrow(RangeError);
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [2, OtaState.NEW]]);
  });

  it("markValid: esp_ota_mark_app_valid_cancel_rollback; OTADATA_STATE with no active entry", () => {
    const chip = chipWith([1, OtaState.VALID], [2, OtaState.PENDING_VERIFY]);
    make(chip, 1).markValid();
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [2, OtaState.VALID]]);
    make(chip, 1).markValid(); // already VALID: nothing to do
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [2, OtaState.VALID]]);
    expect(codeOf(() => make(chipWith(null, null), 0).markValid())).toBe("OTADATA_STATE");
  });

  it("rollbackPossible and markInvalid: INVALID when the previous image can boot; else CONFIRM_NO_ROLLBACK, nothing written", () => {
    const chip = chipWith([1, OtaState.VALID], [2, OtaState.PENDING_VERIFY]);
    const boot = make(chip, 1);
    expect(boot.rollbackPossible()).toBe(true);
    boot.markInvalid();
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [2, OtaState.INVALID]]);

    const alone = chipWith([1, OtaState.PENDING_VERIFY], null, false); // ota_0 running, nothing else anywhere
    const b2 = make(alone, 0);
    expect(b2.rollbackPossible()).toBe(false);
    expect(codeOf(() => b2.markInvalid())).toBe("CONFIRM_NO_ROLLBACK");
    expect(entries(alone)).toEqual([[1, OtaState.PENDING_VERIFY], [0xffffffff, 0xffffffff]]);
  });
});

describe("EspBootControl: ESP-IDF's answers mapped to OtaError codes", () => {
  const IDF = [process.env.XSOTA_ESP_IDF, resolve(__dirname, "..", "..", "..", "shared", "esp-idf")].find((p) => p && existsSync(join(p, "components", "app_update", "include", "esp_ota_ops.h")));

  it("every esp_err_t in the map, ESP_ERR_INVALID_ARG as RangeError, any other as OTADATA_WRITE", () => {
    for (const [err, name, code] of ESP_ERRORS) {
      expect(codeOf(() => checkEsp(err, "call")), name).toBe(code);
    }
    expect(() => checkEsp(0, "call")).not.toThrow();
    expect(() => checkEsp(0x102, "call")).toThrow(RangeError);
    expect(codeOf(() => checkEsp(0x101, "call"))).toBe("OTADATA_WRITE"); // ESP_ERR_NO_MEM: not listed
  });

  it.skipIf(!IDF)("the map's numbers are ESP-IDF v6.0's (esp_err.h, esp_ota_ops.h, spi_flash_mmap.h)", () => {
    const c = join(IDF!, "components");
    const text = ["esp_common/include/esp_err.h", "app_update/include/esp_ota_ops.h", "spi_flash/include/spi_flash_mmap.h"].map((f) => readFileSync(join(c, f), "utf8")).join("\n");
    const defs = new Map<string, string>([...text.matchAll(/^#define (ESP_\w+)\s+(\(?[^/\n]+?\)?)\s*(?:\/\*.*)?$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    const value = (name: string): number => {
      const d = defs.get(name);
      if (d === undefined) throw new Error(`${name} not defined`);
      const sum = /^\((\w+) \+ (0x[0-9a-fA-F]+|\d+)\)$/.exec(d);
      return sum ? value(sum[1]!) + Number(sum[2]) : Number(d);
    };
    for (const [err, name] of ESP_ERRORS) expect(value(name), name).toBe(err);
  });

  it("setBootSlot: an image ESP-IDF does not validate is IMAGE_HASH, otadata untouched", () => {
    const chip = chipWith([1, OtaState.VALID], null, false);
    const boot = BINDINGS[1]![1](chip, 0);
    expect(codeOf(() => boot.setBootSlot(1))).toBe("IMAGE_HASH");
    expect(entries(chip)).toEqual([[1, OtaState.VALID], [0xffffffff, 0xffffffff]]);
  });

  it("runningState: minus ESP_ERR_NOT_FOUND / ESP_ERR_NOT_SUPPORTED is undefined; another error is its code", () => {
    const boot = new EspBootControl();
    for (const [r, want] of [[-0x105, undefined], [-0x106, undefined], [4294967295, 4294967295], [4, 4]] as const) {
      native.impl = { runningState: () => r };
      expect(boot.runningState()).toBe(want);
    }
    native.impl = { runningState: () => -0x1502 };
    expect(codeOf(() => boot.runningState())).toBe("OTADATA_CORRUPT");
  });
});

describe("the one decision the bindings take differently: a torn first-boot otadata write", () => {
  // The factory image's first boot was writing its entry (seq 1) when power was cut: sector 0 holds a
  // torn entry. An update to ota_1 then booted PENDING_VERIFY (seq 2 in sector 1) and failed its self-test.
  it("the agent's rule sees ota_0 bootable (the bootloader would boot it); ESP-IDF's says no rollback", () => {
    const torn = () => chipWith("torn", [2, OtaState.PENDING_VERIFY]);
    expect(BINDINGS[0]![1](torn(), 1).rollbackPossible()).toBe(true);
    const chip = torn();
    const esp = BINDINGS[1]![1](chip, 1);
    expect(esp.rollbackPossible()).toBe(false);
    // On the chip the agent then keeps the image (CONFIRM_NO_ROLLBACK, marked VALID): docs/esp32.md "Boot control on the chip".
    expect(codeOf(() => esp.markInvalid())).toBe("CONFIRM_NO_ROLLBACK");
    esp.markValid();
    expect(entries(chip)[1]).toEqual([2, OtaState.VALID]);
  });
});

describe("whole updates with the boot-control steps through src/boot.ts and its native", () => {
  const engine = createNodeEngine();
  for (const name of ["happy", "rollback-fail-diagnostics", "rollback-crash"]) {
    it(`${name}: the same outcome, byte for byte, as over modules/bootctl.ts`, async () => {
      const s = scenarios.find((x) => x.name === name)!;
      const plain = await runScenario(s, engine, lab);
      native.calls.length = 0;
      const bootControl = (ports: { flash: FlashPort }, chip: SimChip) => {
        native.impl = idfNative(chip, ports.flash);
        return new EspBootControl();
      };
      const routed = await runScenario({ ...s, device: { ...s.device, bootControl } }, engine, lab);
      for (const k of ["running", "final", "code", "otadata", "sha256", "bootVersions", "floor"] as const) expect(routed[k], k).toEqual(plain[k]);
      expect(routed.events.map((e) => e.slice(0, 2))).toEqual(plain.events.map((e) => e.slice(0, 2)));
      expect(native.calls).toContain("setBootSlot");
      expect(native.calls).toContain("runningState");
      if (name === "happy") expect(native.calls).toContain("markValid");
      if (name === "rollback-fail-diagnostics") expect(native.calls).toEqual(expect.arrayContaining(["rollbackPossible", "markInvalid"]));
    });
  }
});
