/*
 * The agent's NVS (Preference) domains: all of them start with "xsota", so nothing the agent
 * stores can clash with an application's own Preference domains (Moddable: domain and key
 * <= 15 characters each).
 *
 *   xsota         the update journal, anti-rollback floor, attempt counts, bad list (modules/journal.ts)
 *   xsota.ctl     signed control commands: last accepted `issued`, download-only hold (modules/control.ts)
 *   xsota.outbox  the audit outbox (modules/outbox.ts)
 *   xsota.rep     the reporter's last result and last announcement seen (modules/reporter.ts)
 *   xsota.dev     per-device provisioning: id, groups, region, broker credentials (modules/provision.ts)
 *   xsota.trust   metadata freshness: highest accepted metaVersion per product/channel (modules/freshness.ts);
 *                 the current root and its TLS anchors' certificates, "root" and "a.<hash>" (modules/roles.ts)
 *
 * Firmware before the namespacing used "ota", "ctl", "outbox" and "reporter"; a device updated
 * from it keeps what they hold:
 * - "outbox" and "reporter" are moved once when their owner opens (moveDomain: read old, write
 *   new, delete old).
 * - "ota" and "ctl" (journal, floor, bad list, tries, replay guard, hold) are copied when the
 *   journal opens (adoptLegacy), and the old keys are deleted only once this image commits
 *   (dropLegacy, from the journal's "committed"). If the new image fails its self-test, the old
 *   one it rolls back to still finds its journal there, reports the rollback and marks the
 *   release bad; should it then install another release, its newer journal is taken again (the
 *   copy is made whenever the old journal differs from the one copied last, by CRC-32).
 */
import type { StorePort } from "./ports";
import { constant } from "./constant";
import { crc32 } from "./otadata";
import { utf8Encode } from "./bytes";

export const DOMAINS = constant({
  journal: "xsota",
  control: "xsota.ctl",
  outbox: "xsota.outbox",
  reporter: "xsota.rep",
  provision: "xsota.dev",
  trust: "xsota.trust",
} as const);

/** The domains of firmware before the namespacing, by owner. */
export const LEGACY_DOMAINS = constant({
  journal: "ota",
  control: "ctl",
  outbox: "outbox",
  reporter: "reporter",
} as const);

/** In DOMAINS.journal: CRC-32 (as an int32) of the legacy journal copied last. */
const MARK = "legacy";

/**
 * Move every key of domain `from` to domain `to` (read old, write new, delete old). After it
 * `from` is empty and the next call costs one keys() listing. Per key the new value is written
 * before the old one is deleted, so a power cut in between loses nothing; a key already in `to`
 * is kept (the write of a move cut short, or the agent's own) and only the old copy deleted.
 * Returns the number of keys written. Throws STORE_* codes.
 */
export function moveDomain(store: StorePort, from: string, to: string): number {
  let moved = 0;
  for (const key of store.keys(from)) {
    const value = store.get(from, key);
    if (value !== undefined && store.get(to, key) === undefined) {
      store.set(to, key, value);
      moved++;
    }
    store.delete(from, key);
  }
  return moved;
}

/** Old values win, but an anti-rollback floor ("floor", "floor2") is never lowered. */
function copyDomain(store: StorePort, from: string, to: string): number {
  let copied = 0;
  for (const key of store.keys(from)) {
    const value = store.get(from, key);
    if (value === undefined) continue;
    const current = store.get(to, key);
    if (key.indexOf("floor") === 0 && typeof value === "number" && typeof current === "number" && current > value) continue;
    store.set(to, key, value);
    copied++;
  }
  return copied;
}

function legacyMark(store: StorePort): number {
  const j = store.get(LEGACY_DOMAINS.journal, "journal");
  return crc32(utf8Encode(typeof j === "string" ? j : "")) | 0;
}

/**
 * Copy the legacy "ota" and "ctl" domains over "xsota" and "xsota.ctl" (the old values win),
 * unless the old journal is the one copied last.
 * Returns the number of keys copied. Throws STORE_* codes.
 */
export function adoptLegacy(store: StorePort): number {
  const mark = legacyMark(store);
  const stored = store.get(DOMAINS.journal, MARK);
  if (stored === mark) return 0;
  const copied = copyDomain(store, LEGACY_DOMAINS.journal, DOMAINS.journal) + copyDomain(store, LEGACY_DOMAINS.control, DOMAINS.control);
  // Written last: a cut before it copies again at the next open. Nothing to copy (a device that
  // never ran the old firmware): no write, and two empty listings at each open.
  if (copied > 0 || stored !== undefined) store.set(DOMAINS.journal, MARK, mark);
  return copied;
}

/** The running image is committed: delete the legacy "ota" and "ctl" keys adoptLegacy kept. Throws STORE_* codes. */
export function dropLegacy(store: StorePort): void {
  const empty = crc32(new Uint8Array(0)) | 0;
  const stored = store.get(DOMAINS.journal, MARK);
  if (stored === undefined || stored === empty) return;
  for (const key of store.keys(LEGACY_DOMAINS.control)) store.delete(LEGACY_DOMAINS.control, key);
  // The old journal last: until it is gone, a cut here leaves the mark matching it (nothing is copied again).
  for (const key of store.keys(LEGACY_DOMAINS.journal)) if (key !== "journal") store.delete(LEGACY_DOMAINS.journal, key);
  store.delete(LEGACY_DOMAINS.journal, "journal");
  store.set(DOMAINS.journal, MARK, empty);
}
