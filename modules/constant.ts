/*
 * Constant tables, frozen through. On the devkit the agent is preloaded (manifest.json): xsl runs
 * the modules at link time and their objects live in flash. An object there that is not frozen
 * gets an alias (a RAM pointer per object, and a RAM copy of it on the first write); a frozen one
 * stays in flash, and a write to it fails loudly on every engine instead of changing a table.
 */

/** Freezes `value` and every object under it; returns `value`. */
export function constant<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) constant((value as Record<string, unknown>)[key]);
  }
  return value;
}
