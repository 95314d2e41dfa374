/*
 * Issue 30, item 1: otadata decisions as ESP-IDF v6.0 makes them (esp_rewrite_ota_data rewrites the
 * active entry in place when it already selects the target slot, IDF commit 996a9ca, IDF #14688).
 * The known failing case: the bootloader fell back from a corrupt slot whose entry was VALID; an
 * update into that slot fails its self-test. v6.0 rolls back to the previous image; before the fix
 * the failed image kept running as VALID (CONFIRM_NO_ROLLBACK) and both sectors held the same seq.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab, writeImage } from "../../host-sim/lab/lab";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { BootControl } from "../../modules/bootctl";
import { OtaState, encodeEntry, OTA_SECTOR } from "../../modules/otadata";

let lab: Lab;
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

describe("ESP-IDF v6.0 otadata: update into the slot the bootloader fell back from", () => {
  it("a failed self-test rolls back to the previous image (not CONFIRM_NO_ROLLBACK)", async () => {
    const rel = lab.publish("fallback-slot", { image: { version: "1.1.0", behavior: "fail-diagnostics" } });
    const chip = lab.chip(); // 1.0.0 in app0
    // app1 held 1.0.5 and was confirmed (seq 2 VALID); then its image was corrupted.
    const img = lab.image({ version: "1.0.5" }).slice();
    img[img.length - 200] ^= 0xff;
    writeImage(chip, "app1", img);
    const ota = chip.partition("otadata");
    ota.eraseBlock(0);
    ota.write(0, encodeEntry(1, OtaState.VALID));
    ota.eraseBlock(1);
    ota.write(OTA_SECTOR, encodeEntry(2, OtaState.VALID));

    const dev = lab.device(createNodeEngine(), chip, lab.config(rel.manifestUrl));
    await dev.run((d) => d.events.some((e) => e.state === "rolled-back" || e.state === "failed" || e.state === "committed"), { quietMs: 100 });
    await dev.stop();
    const end = dev.events[dev.events.length - 1]!;
    expect(dev.bootRecords.map((b) => `${b.slot}:${b.version}`)).toEqual(["0:1.0.0", "1:1.1.0", "0:1.0.0"]);
    expect(end).toMatchObject({ state: "rolled-back", code: "CONFIRM_DIAGNOSTICS" });
    expect(dev.running).toMatchObject({ slot: 0, version: "1.0.0" });
    // v6.0's bytes: the entry for ota_1 was rewritten in place (seq 2, sector 1) and marked INVALID;
    // the previous image's entry (seq 1, sector 0) is untouched.
    const view = new BootControl(chip.flashPort(0)).read();
    expect(view.entries[0]).toMatchObject({ seq: 1, state: OtaState.VALID });
    expect(view.entries[1]).toMatchObject({ seq: 2, state: OtaState.INVALID });
  });
});
