/*
 * Retry timing: exponential backoff with jitter, and Retry-After. The jitter comes from a
 * PRNG seeded by the device id, never Math.random: a fleet still spreads out (every device
 * has its own sequence) while one device's behaviour is reproducible in the simulator.
 */
import type { RetryConfig } from "./config";

/** FNV-1a 32-bit of a string: a seed, not a security function. */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h || 1;
}

/** mulberry32: small, fast, good enough to spread retries. Returns a function giving [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Delay before retry number `attempt` (1 = first retry): "equal jitter", half fixed and half
 * random, of min(maxMs, baseMs * 2^(attempt-1)). Never below baseMs / 2.
 */
export function backoffDelay(attempt: number, retry: RetryConfig, random: () => number): number {
  const exp = Math.min(retry.maxMs, retry.baseMs * Math.pow(2, Math.max(0, Math.min(30, attempt - 1))));
  const half = exp / 2;
  return Math.round(half + random() * half);
}

/** Longest Retry-After the device honours (a hostile host must not park it for days). */
export const MAX_RETRY_AFTER_MS = 3600_000;

/**
 * A Retry-After header (delta seconds or an HTTP-date) as ms from now, capped at
 * MAX_RETRY_AFTER_MS; undefined when absent or unparseable. `wallNow` is the device's wall clock
 * (0 when unset: an HTTP-date is then ignored).
 */
export function parseRetryAfter(value: string | undefined, wallNow: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Number(text) * 1000);
  if (!wallNow) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, Math.min(MAX_RETRY_AFTER_MS, at - wallNow));
}
