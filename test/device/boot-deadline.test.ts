/*
 * src/boot-deadline.ts (armed by the "setup/xsota" setup module before Wi-Fi is up) on the
 * simulated chip: real otadata, real bootloader model, real NVS journal, virtual time.
 */
import { describe, expect, it } from "vitest";
import { SimChip } from "../../host-sim/chip/chip";
import { boot as bootloaderBoot } from "../../host-sim/chip/bootloader";
import { buildImage } from "../../host-sim/chip/image-builder";
import { writeImage } from "../../host-sim/lab/lab";
import { VirtualClock } from "../../backend/clock";
import { SimSystem } from "../../host-sim/engines/ports/system";
import { BootControl } from "../../modules/bootctl";
import { OtaState } from "../../modules/otadata";
import { JournalStore, type Journal } from "../../modules/journal";
import { armBootDeadline } from "../../src/boot-deadline";
import { DEFAULTS } from "../../modules/config";

/** diagnostics.networkDeadlineMs's default: the same bound as the agent's wait for the network. */
const WINDOW = DEFAULTS.networkDeadlineMs;

/** A chip that has just rebooted into a new image in ota_1 (PENDING_VERIFY), the previous one in ota_0. */
function pendingChip() {
  const chip = SimChip.create();
  writeImage(chip, "app0", buildImage({ version: "1.0.0" }));
  writeImage(chip, "app1", buildImage({ version: "1.1.0" }));
  const first = bootloaderBoot(chip);
  expect(first).toMatchObject({ kind: "booted", slot: 0 });
  new BootControl(chip.flashPort(0)).setBootSlot(1);
  const store = chip.store();
  const journal: Journal = { phase: "rebooting", from: "1.0.0", fromSlot: 0, to: "1.1.0", secureVersion: 0, sha256: "ab".repeat(32), size: 65536, url: "https://h/fw.bin", targetSlot: 1, written: 65536 };
  new JournalStore(store).save(journal);
  expect(bootloaderBoot(chip)).toMatchObject({ kind: "booted", slot: 1 });
  const restarts: string[] = [];
  const clock = new VirtualClock();
  const system = new SimSystem({ deviceId: "240ac4000001", hardware: "esp32-rev3", resetReason: "software", onRestart: (r) => restarts.push(r), onLog: () => {} });
  const ports = { flash: chip.flashPort(1), store, clock, system };
  return { chip, store, clock, ports, restarts, boot: new BootControl(ports.flash) };
}

describe("the self-test deadline before main runs (src/boot-deadline.ts)", () => {
  it("restarts a pending image whose main never ran (no network), and the bootloader rolls it back", () => {
    const t = pendingChip();
    expect(t.boot.runningState()).toBe(OtaState.PENDING_VERIFY);
    expect(armBootDeadline(t.ports, WINDOW)).toBeDefined();
    expect(t.clock.step()).toBe(true);
    expect(t.clock.now()).toBe(WINDOW);
    expect(t.restarts).toEqual(["CONFIRM_NETWORK: no self-test before the deadline"]);
    expect(new JournalStore(t.store).load().journal).toMatchObject({ phase: "rebooting", to: "1.1.0", code: "CONFIRM_NETWORK" });
    expect(bootloaderBoot(t.chip)).toMatchObject({ kind: "booted", slot: 0 });
  });

  it("leaves a self-test that has started to its own window, and a committed image alone", () => {
    const started = pendingChip();
    armBootDeadline(started.ports, WINDOW);
    const j = new JournalStore(started.store);
    j.save({ ...j.load().journal!, phase: "confirming" });
    started.clock.step();
    expect(started.restarts).toEqual([]);

    const committed = pendingChip();
    armBootDeadline(committed.ports, WINDOW);
    committed.boot.setRunningState(OtaState.VALID);
    committed.clock.step();
    expect(committed.restarts).toEqual([]);
    expect(bootloaderBoot(committed.chip)).toMatchObject({ kind: "booted", slot: 1 });
  });

  it("arms nothing on a confirmed image: no network is then no reason to restart", () => {
    const t = pendingChip();
    t.boot.setRunningState(OtaState.VALID);
    expect(armBootDeadline(t.ports, WINDOW)).toBeUndefined();
    expect(t.clock.pending()).toBe(0);
  });
});
