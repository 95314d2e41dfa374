import { describe, expect, it } from "vitest";
import { parseConfig } from "../../modules/config";
import { Outbox } from "../../modules/outbox";
import { OtaError } from "../../modules/errors";
import type { StorePort, StoreValue } from "../../modules/ports";

/** A minimal StorePort with Moddable's limits, for the parts that do not need flash. */
class MemStore implements StorePort {
  data = new Map<string, StoreValue>();
  sets = 0;
  get(d: string, k: string) { return this.data.get(`${d}/${k}`); }
  set(d: string, k: string, v: StoreValue) {
    if (d.length > 15 || k.length > 15) throw new OtaError("STORE_KEY", k);
    if (typeof v === "string" && v.length > 4000) throw new OtaError("STORE_VALUE", k);
    this.sets++;
    this.data.set(`${d}/${k}`, v);
  }
  delete(d: string, k: string) { this.data.delete(`${d}/${k}`); }
  keys(d: string) { return [...this.data.keys()].filter((k) => k.startsWith(`${d}/`)).map((k) => k.slice(d.length + 1)); }
}

const key = { type: "ecdsa-p256", spki: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" };

describe("parseConfig", () => {
  it("fills defaults", () => {
    const c = parseConfig({ product: "p", manifestUrl: "https://h/r.json", trustedKeys: [key] });
    expect(c.diagnostics.windowMs).toBe(30000);
    expect(c.retry.maxAttempts).toBeGreaterThan(0);
    expect(c.requireImageSignature).toBe(false);
    expect(c.channel).toBe("stable");
  });
  it("accepts JSON text and keeps targeting", () => {
    const c = parseConfig(JSON.stringify({ product: "p", manifestUrl: "https://h/r.json", trustedKeys: [key], groups: ["a"], region: "eu", maintenanceWindow: { startMinute: 60, endMinute: 120 } }));
    expect(c.groups).toEqual(["a"]);
    expect(c.maintenanceWindow).toEqual({ startMinute: 60, endMinute: 120 });
  });
  it.each([
    ["not JSON", "{"],
    ["no product", { manifestUrl: "https://h", trustedKeys: [key] }],
    ["no keys", { product: "p", manifestUrl: "https://h", trustedKeys: [] }],
    ["bad key type", { product: "p", manifestUrl: "https://h", trustedKeys: [{ type: "ed25519", spki: "AA==" }] }],
    ["float", { product: "p", manifestUrl: "https://h", trustedKeys: [key], checkIntervalMs: 1.5 }],
    ["bad url", { product: "p", manifestUrl: "ftp://h", trustedKeys: [key] }],
    ["max < base", { product: "p", manifestUrl: "https://h", trustedKeys: [key], retry: { baseMs: 10, maxMs: 5 } }],
  ])("rejects %s with CONFIG_INVALID", (_name, input) => {
    expect(() => parseConfig(input)).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
  });
});

const ev = (state: "downloading" | "checking", progress?: number) => ({ time: 0, uptime: 0, state, from: "1.0.0", ...(progress ? { progress } : {}) });

describe("Outbox", () => {
  it("persists events and seq across a reload, acks remove them", () => {
    const store = new MemStore();
    const a = new Outbox(store, { capacity: 8 });
    expect(a.append(ev("checking")).seq).toBe(1);
    expect(a.append(ev("downloading", 25)).seq).toBe(2);
    const b = new Outbox(store, { capacity: 8 });
    expect(b.pending().map((e) => e.seq)).toEqual([1, 2]);
    expect(b.nextSeq).toBe(3);
    b.ack(1);
    expect(new Outbox(store, { capacity: 8 }).pending().map((e) => e.seq)).toEqual([2]);
    b.ackUpTo(5);
    const c = new Outbox(store, { capacity: 8 });
    expect(c.pending()).toEqual([]);
    expect(c.append(ev("checking")).seq).toBe(3);
  });
  it("repairs next after a cut between the event and the counter", () => {
    const store = new MemStore();
    const a = new Outbox(store, { capacity: 8 });
    a.append(ev("checking"));
    store.set("xsota.outbox", "e2", JSON.stringify({ ...ev("checking"), seq: 2 }));
    expect(new Outbox(store, { capacity: 8 }).nextSeq).toBe(3);
  });
  it("drops progress milestones first when full and says so", () => {
    const store = new MemStore();
    const o = new Outbox(store, { capacity: 4 });
    o.append(ev("checking"));
    o.append(ev("downloading", 25));
    o.append(ev("downloading", 50));
    o.append(ev("checking"));
    o.append(ev("checking"));
    const p = o.pending();
    expect(p.filter((e) => e.code !== "OUTBOX_FULL").map((e) => e.progress ?? 0)).toEqual([0, 50, 0, 0]);
    const note = p.find((e) => e.code === "OUTBOX_FULL");
    expect(note?.detail).toBe("1 events dropped");
    expect(o.dropped).toBe(1);
    const reloaded = new Outbox(store, { capacity: 4 });
    expect(reloaded.pending().length).toBe(5);
    reloaded.ack(note!.seq);
    expect(reloaded.dropped).toBe(0);
  });
});

describe("parseConfig: the self-test and the network", () => {
  const base = { product: "p", manifestUrl: "https://h/r.json", trustedKeys: [key] };
  it("defaults: the network is up at start, 120 s to come up, network rollbacks retried from 5 min, 3 at most", () => {
    const c = parseConfig(base);
    expect(c.diagnostics).toMatchObject({ windowMs: 30_000, waitForNetwork: false, networkDeadlineMs: 120_000 });
    expect(c.networkRetry).toEqual({ baseMs: 300_000, maxMs: 6 * 3600_000, maxAttempts: 3 });
  });
  it("takes waitForNetwork, networkDeadlineMs and networkRetry, and names a bad field", () => {
    const c = parseConfig({ ...base, diagnostics: { waitForNetwork: true, networkDeadlineMs: 60_000 }, networkRetry: { baseMs: 1000, maxMs: 2000, maxAttempts: 1 } });
    expect(c.diagnostics).toMatchObject({ waitForNetwork: true, networkDeadlineMs: 60_000, windowMs: 30_000 });
    expect(c.networkRetry).toEqual({ baseMs: 1000, maxMs: 2000, maxAttempts: 1 });
    expect(() => parseConfig({ ...base, diagnostics: { waitForNetwork: "yes" } })).toThrow(/diagnostics.waitForNetwork/);
    expect(() => parseConfig({ ...base, diagnostics: { networkDeadlineMs: 0 } })).toThrow(/diagnostics.networkDeadlineMs/);
    expect(() => parseConfig({ ...base, networkRetry: { baseMs: 5000, maxMs: 1000 } })).toThrow(/networkRetry.maxMs/);
  });
});
