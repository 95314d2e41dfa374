/*
 * Semantic Versioning 2.0.0: parsing and precedence (semver.org, section 11). Build metadata
 * is parsed and ignored for precedence. Bounded: at most 64 characters, numbers up to 2^53-1.
 */

export interface Semver {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release identifiers; numeric ones as numbers. */
  prerelease: Array<string | number>;
  build: string[];
}

const NUM = "(0|[1-9]\\d*)";
const IDENT = "(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)";
const SOURCE = `^${NUM}\\.${NUM}\\.${NUM}(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`;
// Made at the first parse, in RAM: a module-level RegExp of a module xsl preloads lives in ROM,
// and XS's exec on one crashed (modules/manifest-fields.ts, moddable-host/README.md).
let semverRe: RegExp | undefined;

function num(s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new TypeError(`semver: number too large: ${s}`);
  return n;
}

/** Parse "MAJOR.MINOR.PATCH[-pre][+build]". Throws TypeError when `s` is not a valid version. */
export function parseSemver(s: string): Semver {
  if (typeof s !== "string" || s.length > 64) throw new TypeError("semver: expected a string of at most 64 characters");
  const m = (semverRe ??= new RegExp(SOURCE)).exec(s);
  if (!m) throw new TypeError(`semver: not a version: ${JSON.stringify(s)}`);
  return {
    major: num(m[1]!),
    minor: num(m[2]!),
    patch: num(m[3]!),
    prerelease: m[4] ? m[4].split(".").map((id) => (/^\d+$/.test(id) ? num(id) : id)) : [],
    build: m[5] ? m[5].split(".") : [],
  };
}

/** True when `s` parses. */
export function isSemver(s: unknown): s is string {
  if (typeof s !== "string") return false;
  try {
    parseSemver(s);
    return true;
  } catch {
    return false;
  }
}

function cmp(a: number | string, b: number | string): -1 | 0 | 1 {
  if (a === b) return 0;
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : 1;
  if (typeof a === "number") return -1; // numeric identifiers have lower precedence
  if (typeof b === "number") return 1;
  return a < b ? -1 : 1; // ASCII order
}

/** Precedence of two versions (strings or parsed): -1, 0 or 1. Throws TypeError on invalid input. */
export function compareSemver(a: string | Semver, b: string | Semver): -1 | 0 | 1 {
  const x = typeof a === "string" ? parseSemver(a) : a;
  const y = typeof b === "string" ? parseSemver(b) : b;
  const core = cmp(x.major, y.major) || cmp(x.minor, y.minor) || cmp(x.patch, y.patch);
  if (core) return core;
  const px = x.prerelease, py = y.prerelease;
  if (!px.length || !py.length) return px.length === py.length ? 0 : px.length ? -1 : 1;
  for (let i = 0; i < Math.min(px.length, py.length); i++) {
    const c = cmp(px[i]!, py[i]!);
    if (c) return c;
  }
  return px.length === py.length ? 0 : px.length < py.length ? -1 : 1;
}
