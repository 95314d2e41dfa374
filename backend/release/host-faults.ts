/*
 * Hostile behaviours of the local update host, set per path, for the agent's tests. Each
 * fault affects at most `times` requests (default: every request; retry-after: one).
 */

export type Fault =
  /** Answer 200 with the whole body although a Range was asked for. */
  | { kind: "ignore-range"; times?: number }
  /** Answer 206 for a different range than asked (start + shift, default +512), saying so in Content-Range. */
  | { kind: "wrong-content-range"; shift?: number; times?: number }
  /** Once `afterBytes` body bytes of this path were sent in total, the resource has a new ETag (and `body`, if given). */
  | { kind: "change-etag"; afterBytes: number; body?: Uint8Array }
  /** Close the socket once the body has reached absolute byte offset `at` (bytes before it are sent). */
  | { kind: "cut-at"; at: number; times?: number }
  /** Send `bytesPerTick` (1) byte(s) every `intervalMs` (1000) of the VirtualClock, starting at body byte `afterBytes` (0). */
  | { kind: "drip"; intervalMs?: number; bytesPerTick?: number; afterBytes?: number; times?: number }
  /** Request i gets status statuses[i] (200 = serve normally); later requests are served normally. */
  | { kind: "status"; statuses: number[] }
  /** Answer `status` (503) with `Retry-After: seconds`. */
  | { kind: "retry-after"; seconds: number; status?: number; times?: number }
  /**
   * Send `extra` (64) bytes more than the response should carry. Default: Content-Length is
   * right and the extra bytes follow the body on the wire; `declared`: Content-Length counts them.
   */
  | { kind: "overlong"; extra?: number; declared?: boolean; times?: number }
  /** Answer 404. */
  | { kind: "not-found"; times?: number };

export type FaultKind = Fault["kind"];

/** Per-path fault state: which faults apply, how often they have fired. */
export class FaultSet {
  private used = new Map<Fault, number>();
  private statusIndex = 0;
  constructor(readonly faults: readonly Fault[]) {}

  /** The status fault's answer for this request, or undefined (serve normally). Advances the list. */
  nextStatus(): number | undefined {
    const f = this.faults.find((x): x is Extract<Fault, { kind: "status" }> => x.kind === "status");
    if (!f) return undefined;
    const s = f.statuses[this.statusIndex++];
    return s === undefined || s === 200 ? undefined : s;
  }

  /** The first fault of `kind` that still has uses; counts one use when `consume`. */
  take<K extends FaultKind>(kind: K, consume = true): Extract<Fault, { kind: K }> | undefined {
    for (const f of this.faults) {
      if (f.kind !== kind) continue;
      const limit = "times" in f && f.times !== undefined ? f.times : kind === "retry-after" ? 1 : Infinity;
      const n = this.used.get(f) ?? 0;
      if (n >= limit) continue;
      if (consume) this.used.set(f, n + 1);
      return f as Extract<Fault, { kind: K }>;
    }
    return undefined;
  }
}
