/*
 * Bounded JSON from untrusted bytes: strict UTF-8, a size cap and a nesting cap checked
 * before JSON.parse (deep nesting would otherwise cost stack on the chip).
 */

/**
 * Parse `bytes` as one JSON value. Returns `undefined`-free result or throws TypeError with a
 * reason (callers map it to their own code). `maxDepth` counts arrays and objects.
 */
export function parseJsonBytes(bytes: Uint8Array, maxBytes: number, maxDepth: number, decode: (b: Uint8Array) => string): unknown {
  if (bytes.length > maxBytes) throw new RangeError(`larger than ${maxBytes} bytes`);
  const text = decode(bytes);
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw new TypeError(`nested deeper than ${maxDepth}`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new TypeError(`invalid JSON: ${(e as Error).message}`);
  }
}

/** What parseJsonBytes refused, for a refusal's detail: "not JSON", or its size or nesting reason. */
export function jsonRefusal(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.startsWith("invalid JSON") ? "not JSON" : m;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Own property only (a JSON "__proto__" key is an own property, never the prototype). */
export function own(o: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}
