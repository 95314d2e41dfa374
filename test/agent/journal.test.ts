/*
 * The anti-rollback floor against Moddable's Preference.set on the ESP32, which erases a key
 * before it writes it: a power cut inside any one set must not lower the floor.
 */
import { describe, expect, it } from "vitest";
import { JournalStore } from "../../modules/journal";
import type { StorePort, StoreValue } from "../../modules/ports";

class PowerCut extends Error {}

/** Preference as on the chip: set = delete, then write; a cut after the delete loses the key. */
function chipLikeStore(cutAtSet: number) {
  const data = new Map<string, StoreValue>();
  let sets = 0;
  const store: StorePort = {
    get: (d, k) => data.get(`${d}/${k}`),
    set(d, k, v) {
      data.delete(`${d}/${k}`);
      if (++sets === cutAtSet) throw new PowerCut();
      data.set(`${d}/${k}`, v);
    },
    delete: (d, k) => void data.delete(`${d}/${k}`),
    keys: (d) => [...data.keys()].filter((x) => x.startsWith(`${d}/`)).map((x) => x.slice(d.length + 1)),
  };
  return { store, data };
}

describe("anti-rollback floor", () => {
  it("never goes down, whichever set a power cut tears", () => {
    for (let cut = 1; cut <= 6; cut++) {
      const { store } = chipLikeStore(cut);
      const j = new JournalStore(store);
      let committed = 0;
      try {
        for (const v of [3, 5]) {
          j.raiseFloor(v);
          committed = v;
        }
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
      }
      // After the reboot: at least what the last completed raise stored.
      expect(new JournalStore(store).floor(), `cut at set ${cut}`).toBeGreaterThanOrEqual(committed);
    }
  });

  it("is never lowered by a smaller secure_version", () => {
    const { store } = chipLikeStore(0);
    const j = new JournalStore(store);
    j.raiseFloor(4);
    j.raiseFloor(2);
    expect(j.floor()).toBe(4);
  });
});
