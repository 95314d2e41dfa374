/*
 * Issue 29, item 8: a fuzz of signed manifests, control envelopes, device commands, release
 * announcements, root files (a device holding root v1 asked to rotate) and roles-mode rollout
 * bundles (verifyBundle + checkFreshness). From valid signed objects (keys generated here), 100,000 mutants on Node
 * (byte-level and structure-aware: test/security/fuzz-kit.ts), each judged by the oracle:
 * refused with a named OtaError code (nothing else thrown, no hang, and the NVS a device keeps for
 * acceptances untouched: the command replay guard, the last announcement), or accepted acting only
 * on bytes a trusted key signed, with their original meaning (and the replay guard moved to the
 * command's own issued). Roles mode: an accepted root is byte for byte one a device holding v1 may
 * take; an accepted bundle installs a release a valid original carried, with the rollout role's own
 * fields, and any root it rotated to is such a root (even when it refuses the bundle: the chain is
 * applied first). A sample of 1 in 128 also runs over
 * host-sim's real CryptoPort (the fuzz's crypto answers "false" without computing for bytes
 * nobody signed) and must give the same verdicts; 2,000 of the same inputs (every 49th) run in the
 * real XS engine and must give Node's verdicts.
 *
 * Reproducible: XSOTA_FUZZ_SEED (default below), XSOTA_FUZZ_COUNT, XSOTA_FUZZ_XS_COUNT, and
 * XSOTA_FUZZ_INPUT=i to run input i alone: each input's mutations depend only on the seed and its
 * index (the keys, and so the signature bytes, are new per run).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { build } from "esbuild";
import { join } from "node:path";
import { toBase64 } from "../../modules/bytes";
import { nodeCrypto } from "../../backend/crypto";
import { memoCrypto } from "../../host-sim/lab/fleet-faults";
import { XsWorker } from "../../host-sim/engines/xs/worker";
import { fuzzKeys, judge, mutate, newWorld, prepare, rng, type Mutant, type Prepared, type World } from "./fuzz-kit";
import { DOC_TYPES, fuzzRoot } from "./fuzz-docs";
import { TARGETS, targetContext, type TargetContext, type TargetSetup, type Verdict } from "./fuzz-targets";

const SEED = Number(process.env.XSOTA_FUZZ_SEED ?? 0x29f0);
const COUNT = Number(process.env.XSOTA_FUZZ_COUNT ?? 100_000);
/** XSOTA_FUZZ_INPUT=i: run only input i of the seed (to reproduce a failure; its report names the index). */
const ONLY = process.env.XSOTA_FUZZ_INPUT === undefined ? undefined : Number(process.env.XSOTA_FUZZ_INPUT);
const XS_COUNT = Number(process.env.XSOTA_FUZZ_XS_COUNT ?? 2000);
const CROSS_CHECK_EVERY = 128;
/** Inputs per XS crank. */
const BATCH = 250;
/** A hang guard, not a benchmark (two shared cores): one input taking this long is a pathological path. */
const HANG_GUARD_MS = 2000;

const setup: TargetSetup = { keys: [], deviceId: "aa0000000001", lastIssued: 1_765_000_000_000, product: "fuzz", channel: "stable" };
let world: World;
let ctx: TargetContext;
let prepared: Prepared[];
/** The types in turn, each as many times as its weight (interleaved: every stretch of inputs has each type). */
let schedule: Prepared[];

interface TypeStats {
  inputs: number;
  accepted: number;
  unchanged: number;
  /** Time in the verifier and in the mutator, ms. */
  ms: number;
  mutating: number;
  codes: Record<string, number>;
}

/** The mutant for input `i` of a run: depends on (seed, i) only. */
function input(seed: number, i: number): { p: Prepared; m: Mutant; original: Uint8Array } {
  const r = rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const p = schedule[i % schedule.length]!;
  const original = r.pick(p.originals).bytes;
  return { p, m: mutate(r, world, original), original };
}

const same = (a: Verdict, b: Verdict) => (a.ok && b.ok ? a.out === b.out && a.signed.join() === b.signed.join() && a.stored === b.stored : !a.ok && !b.ok && a.code === b.code && a.wrote === b.wrote);
const show = (v: Verdict) => (v.ok ? `accepted ${v.out}` : `${v.code} ${v.detail.slice(0, 200)}`);

beforeAll(() => {
  const keys = fuzzKeys();
  setup.keys = keys.configs;
  world = newWorld(keys);
  setup.root = fuzzRoot(world);
  ctx = targetContext(setup, world.crypto);
  prepared = DOC_TYPES.map((t) => prepare(t, world, setup, TARGETS[t.target], ctx));
  schedule = [];
  for (let turn = 0; turn < Math.max(...prepared.map((p) => p.type.weight ?? 1)); turn++) for (const p of prepared) if (turn < (p.type.weight ?? 1)) schedule.push(p);
});

describe("fuzz: signed manifests, control envelopes, commands, announcements, root files, rollout bundles (issue 29)", () => {
  it(`${COUNT} mutants on Node: 0 accepted that should not be, every refusal a named code`, async () => {
    const real = targetContext(setup, memoCrypto(nodeCrypto));
    const stats = new Map<string, TypeStats>(prepared.map((p) => [p.type.name, { inputs: 0, accepted: 0, unchanged: 0, ms: 0, mutating: 0, codes: {} }]));
    const failures: string[] = [];
    const flagged = new Map<string, number>();
    let slowest = { ms: 0, at: -1 };
    let crossChecked = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let yielded = t0;
    for (let i = ONLY ?? 0; i < (ONLY === undefined ? COUNT : ONLY + 1); i++) {
      // let the worker answer vitest's RPC (a 60 s synchronous loop makes it time out)
      if (performance.now() - yielded > 500) {
        await new Promise((resolve) => setImmediate(resolve));
        yielded = performance.now();
      }
      const t0m = performance.now();
      const { p, m, original } = input(SEED, i);
      const mutating = performance.now() - t0m;
      const target = TARGETS[p.type.target];
      const t = performance.now();
      const v = target(m.bytes, ctx);
      const ms = performance.now() - t;
      if (ms > slowest.ms) slowest = { ms, at: i };
      const s = stats.get(p.type.name)!;
      s.inputs++;
      s.ms += ms;
      s.mutating += mutating;
      if (Buffer.from(m.bytes).equals(Buffer.from(original))) s.unchanged++;
      if (v.ok) s.accepted++;
      else {
        // a command's or announcement's refusal names the code underneath in its detail: counted as ANNOUNCE_INVALID/SIG_INVALID...
        const under = v.code === "ANNOUNCE_INVALID" ? /\b(MANIFEST|SIG|ANNOUNCE)_[A-Z_]+\b/.exec(v.detail)?.[0] : undefined;
        const key = under ? `${v.code}/${under}` : v.code;
        s.codes[key] = (s.codes[key] ?? 0) + 1;
      }
      let why = judge(p, world, v, m, setup);
      if (!why && i % CROSS_CHECK_EVERY === 0) {
        crossChecked++;
        const w = target(m.bytes, real);
        if (!same(v, w)) why = `the real CryptoPort says ${show(w)}, the fuzz's ${show(v)}`;
      }
      if (why) flagged.set(p.type.name, (flagged.get(p.type.name) ?? 0) + 1);
      if (why && failures.length < 20) failures.push(`seed ${SEED} input ${i} (${p.type.name}; ${m.steps.join(", ")}): ${why}\n  input: ${Buffer.from(m.bytes).toString("latin1").slice(0, 300)}`);
      for (const hex of m.resigned.keys()) world.crypto.forget(Buffer.from(hex, "hex"));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const table = [...stats].map(([name, s]) => `  ${name}: ${s.inputs} inputs (${((s.ms * 1000) / Math.max(1, s.inputs)).toFixed(0)} µs to verify, ${((s.mutating * 1000) / Math.max(1, s.inputs)).toFixed(0)} to mutate), ${s.accepted} accepted (${s.unchanged} unchanged), refused ${JSON.stringify(s.codes)}`).join("\n");
    console.log(`fuzz (seed ${SEED}): ${ONLY === undefined ? COUNT : `input ${ONLY} of`} inputs in ${seconds.toFixed(1)} s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s), ${crossChecked} cross-checked on the real CryptoPort, slowest ${slowest.ms.toFixed(1)} ms (input ${slowest.at}); crypto ${JSON.stringify(world.crypto.stats)}; flagged by the oracle ${JSON.stringify(Object.fromEntries(flagged))}\n${table}`);
    expect(failures).toEqual([]);
    expect(slowest.ms).toBeLessThan(HANG_GUARD_MS);
    if (ONLY !== undefined) return;
    // The fuzz reaches both sides: acceptances (benign re-encodings, extra signatures) and many distinct refusals.
    for (const [name, s] of stats) {
      expect(s.accepted, name).toBeGreaterThan(0);
      expect(s.inputs - s.accepted, name).toBeGreaterThan(s.inputs / 2);
    }
    const codes = new Set([...stats.values()].flatMap((s) => Object.keys(s.codes).flatMap((c) => c.split("/"))));
    for (const c of ["MANIFEST_SYNTAX", "MANIFEST_FIELD", "MANIFEST_TOO_LARGE", "MANIFEST_UNSIGNED", "SIG_INVALID", "SIG_UNKNOWN_KEY", "SIG_REVOKED_KEY", "ANNOUNCE_INVALID", "ROLE_THRESHOLD", "ROOT_VERSION", "ROOT_INVALID", "ROOT_EXPIRED", "ROLLOUT_RELEASE", "MANIFEST_REPLAY", "MANIFEST_EXPIRED", "MANIFEST_CHANNEL", "POLICY_PRODUCT"]) expect(codes, c).toContain(c);
  }, 600_000);

  describe("in the real XS engine", () => {
    let worker: XsWorker;
    beforeAll(async () => {
      const code = (await build({ entryPoints: [join(import.meta.dirname, "xs-guest.ts")], bundle: true, platform: "neutral", format: "iife", write: false, target: "es2022" })).outputFiles[0]!.text;
      // The hang guard in XS: a batch over ~10x the largest measured (47 M) ends the worker (E_TOO_MUCH_COMPUTATION).
      worker = new XsWorker({ name: "fuzz", meteringLimit: 500_000_000, handleCommand: (req) => bridge(world, req) });
      await worker.evaluate(code);
    });
    afterAll(async () => {
      await worker?.close();
    });

    it(`${XS_COUNT} mutants give Node's verdicts, and pass the oracle there`, async () => {
      // A sample of the Node run's own inputs: every stride-th (stride prime to the schedule's length, so each document type comes up in its share).
      const seed = SEED;
      const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
      let stride = Math.max(1, (Math.floor(COUNT / XS_COUNT) - 1) | 1);
      while (gcd(stride, schedule.length) !== 1) stride += 2;
      const failures: string[] = [];
      let accepted = 0;
      let compute = 0;
      const byType: Record<string, number> = {};
      const t0 = performance.now();
      for (let start = 0; start < XS_COUNT; start += BATCH) {
        const batch = Array.from({ length: Math.min(BATCH, XS_COUNT - start) }, (_, k) => ({ i: (start + k) * stride, ...input(seed, (start + k) * stride) }));
        const node = batch.map((b) => TARGETS[b.p.type.target](b.m.bytes, ctx));
        const req = { setup: start === 0 ? setup : undefined, cases: batch.map((b) => ({ target: b.p.type.target, b64: toBase64(b.m.bytes) })) };
        const reply = await worker.command(new Uint8Array(Buffer.from(JSON.stringify(req)))).catch((e: Error) => {
          throw new Error(`seed ${seed} inputs ${start}..${start + batch.length - 1}: ${e.message}`);
        });
        compute = Math.max(compute, reply.meter.compute);
        const xs = JSON.parse(Buffer.from(reply.reply).toString("utf8")) as Verdict[];
        batch.forEach((b, k) => {
          const x = xs[k]!;
          if (x.ok) accepted++;
          byType[b.p.type.name] = (byType[b.p.type.name] ?? 0) + 1;
          const why = !same(x, node[k]!) ? `XS says ${show(x)}, Node ${show(node[k]!)}` : judge(b.p, world, x, b.m, setup);
          if (why && failures.length < 20) failures.push(`seed ${seed} input ${b.i} (${b.p.type.name}; ${b.m.steps.join(", ")}): ${why}`);
        });
        for (const b of batch) for (const hex of b.m.resigned.keys()) world.crypto.forget(Buffer.from(hex, "hex"));
      }
      console.log(`fuzz in XS (seed ${seed}): ${XS_COUNT} inputs (one in ${stride} of the Node run's) in ${((performance.now() - t0) / 1000).toFixed(1)} s (${JSON.stringify(byType)}), ${accepted} accepted; the largest batch of ${BATCH} took ${compute} XS metering units`);
      expect(failures).toEqual([]);
      expect(accepted).toBeGreaterThan(0);
    }, 600_000);
  });
});

/** The XS guest's CryptoPort calls (xs-guest.ts), answered by the fuzz's CryptoPort. */
function bridge(w: World, req: Uint8Array): Uint8Array {
  const dv = new DataView(req.buffer, req.byteOffset, req.byteLength);
  const a: Uint8Array[] = [];
  for (let o = 1; o < req.length; ) {
    const n = dv.getUint32(o, true);
    a.push(req.slice(o + 4, o + 4 + n));
    o += 4 + n;
  }
  if (req[0] === 0) {
    const h = w.crypto.sha256();
    a.forEach((x) => h.write(x));
    return h.close();
  }
  if (req[0] === 1) return Uint8Array.of(w.crypto.verifyEcdsaP256(a[0]!, a[1]!, a[2]!) ? 1 : 0);
  return Uint8Array.of(w.crypto.verifyRsaPkcs1Sha256(a[0]!, a[1]!, a[2]!, a[3]!) ? 1 : 0);
}
