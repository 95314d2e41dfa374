/*
 * Flash wear of one complete update cycle (check, download, verify, switch, reboot, self-test,
 * confirm) with the shipped download settings, booked per partition by a recorder on the chip's
 * SimFlash (so the bootloader's otadata writes and the NVS store's writes count too).
 *
 * ESP-IDF's own minimum with rollback enabled (bootloader_utility.c, esp_ota_ops.c): the app
 * erases+writes one otadata sector to switch (esp_ota_set_boot_partition) and one to mark the
 * image valid (esp_ota_mark_app_valid_cancel_rollback); the bootloader erases+writes one to turn
 * NEW into PENDING_VERIFY. 2 by the app + 1 by the bootloader.
 */
import { Lab, FACTORY } from "../host-sim/lab/lab";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import { DEFAULTS } from "../modules/config";
import { FlashRecorder, probeEngine, type PartitionWear } from "./probe";

export const IDF_OTADATA = { app: { erases: 2, writes: 2 }, bootloader: { erases: 1, writes: 1 } };

let runs = 0;

export interface WearResult {
  imageBytes: number;
  imageSectors: number;
  final: string | null;
  running: string | null;
  slot: PartitionWear & { erasesPerImageSector: number; bytesWrittenPerImageByte: number };
  otadata: { app: { erases: number; writes: number }; bootloader: { erases: number; writes: number } };
  nvs: PartitionWear & { writesPerMB: number; bytesPerMB: number; usageBefore: number; usageAfter: number };
  /** store.set calls of the whole cycle per domain/key, and the journal (xsota/journal)'s per MB of image. */
  setsByDomain: Record<string, number>;
  journalSetsPerMB: number;
  /** Goals met: one erase per image sector and none twice, no rewrite, bytes = image, otadata = IDF's. */
  ok: { slot: boolean; otadata: boolean };
}

/** One full update cycle of a `size`-byte image on a fresh device (Node engine). */
export async function wear(options: { size?: number; lab?: Lab } = {}): Promise<WearResult> {
  const size = options.size ?? 1536 * 1024;
  const lab = options.lab ?? (await Lab.create());
  const engine = probeEngine(createNodeEngine());
  try {
    // A device that already booted its factory image once (the bootloader's one-time otadata
    // initialisation from blank is not an update's cost), then the release, then a power cycle.
    const dir = `bench-wear-${size}-${++runs}`;
    const chip = lab.chip(FACTORY);
    const store = chip.store();
    const rel0 = lab.publish(dir, { image: { version: "1.0.0", secureVersion: 1 } });
    const device = lab.device(engine, chip, lab.config(rel0.manifestUrl, { download: { ...DEFAULTS.download } }));
    const drive = { maxVirtualMs: 6 * 3600_000, maxRealMs: 120_000, quietMs: 250 };
    let rec: FlashRecorder | undefined;
    let first = 0;
    let usageBefore = 0;
    let rel: ReturnType<Lab["publish"]> | undefined;
    try {
      await device.run((d) => d.idle, drive);
      usageBefore = store.usage().usedBytes;
      rel = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1, size } });
      rec = new FlashRecorder(chip);
      first = engine.profiles.length;
      device.powerCycle();
      await device.run((d) => d.idle, drive);
    } finally {
      await device.stop();
      rec?.stop();
    }
    if (!rec || !rel) throw new Error("wear: the update did not start");
    const usageAfter = store.usage().usedBytes;
    const imageBytes = rel.image.length;
    const imageSectors = Math.ceil(imageBytes / 4096);
    const slotW = rec.wear("app1");
    const otaTotal = rec.wear("otadata");
    const app = { erases: 0, writes: 0 };
    for (const p of engine.profiles.slice(first)) {
      const o = p.byLabel["otadata"];
      if (o) { app.erases += o.erases; app.writes += o.writes; }
    }
    const bootloader = { erases: otaTotal.erases - app.erases, writes: otaTotal.writes - app.writes };
    const nvsW = rec.wear("nvs");
    const setsByDomain: Record<string, number> = {};
    for (const p of engine.profiles.slice(first)) for (const [d, n] of Object.entries(p.setsByDomain)) setsByDomain[d] = (setsByDomain[d] ?? 0) + n;
    const mb = imageBytes / (1024 * 1024);
    const final = [...device.events].reverse().find((e) => ["committed", "rolled-back", "failed", "refused"].includes(e.state))?.state ?? null;
    const slot = { ...slotW, erasesPerImageSector: slotW.erases / imageSectors, bytesWrittenPerImageByte: slotW.bytesWritten / imageBytes };
    return {
      imageBytes,
      imageSectors,
      final,
      running: device.running?.version ?? null,
      slot,
      otadata: { app, bootloader },
      nvs: { ...nvsW, writesPerMB: nvsW.writes / mb, bytesPerMB: nvsW.bytesWritten / mb, usageBefore, usageAfter },
      setsByDomain,
      journalSetsPerMB: (setsByDomain["xsota/journal"] ?? 0) / mb,
      ok: {
        slot: slotW.erases === imageSectors && slotW.sectorsErasedTwice === 0 && slotW.rewriteBytes === 0 && slotW.bytesWritten === imageBytes,
        otadata: app.erases === IDF_OTADATA.app.erases && app.writes === IDF_OTADATA.app.writes
          && bootloader.erases === IDF_OTADATA.bootloader.erases && bootloader.writes === IDF_OTADATA.bootloader.writes,
      },
    };
  } finally {
    await engine.close();
    if (!options.lab) await lab.close();
  }
}
