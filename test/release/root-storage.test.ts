/*
 * A root with two large CA anchors (RSA-4096 CA certificates made by OpenSSL, ~1.3 KB of DER each:
 * the overlap of a CA rollover on a public or corporate RSA CA) next to 7 keys: carried in a
 * rollout bundle, rotated into NVS (modules/roles.ts RootStore: the root under "root" with each
 * anchor's hash, each anchor's DER under its own key), read back after a reboot, retired, and cut
 * by a power loss at every flash operation of the rotation. The tools refuse what devices could
 * not keep. SIM's NVS keeps strings to 3,999 bytes, as ESP-IDF's nvs_set_str does.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimChip } from "../../host-sim/chip/chip";
import { nodeCrypto } from "../../backend/crypto";
import { generateKey, type SigningKey } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { createRollout, rootPayload, signRoot, type RootInput } from "../../backend/release/roles-tool";
import { RootStore, anchorsPem, verifyBundle, ROOT_LIMITS } from "../../modules/roles";
import { DOMAINS } from "../../modules/nvs-domains";
import { toBase64 } from "../../modules/bytes";
import { codeOf } from "../codes";

const haveOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const k = (): SigningKey => generateKey("ecdsa-p256");
const [r1, r2, r3, rel1, rel2, roll1, cmd1] = [k(), k(), k(), k(), k(), k(), k()];
const NOW = Date.UTC(2026, 0, 1);

function input(version: number, anchors?: RootInput["anchors"]): RootInput {
  return {
    version, signedAt: NOW,
    roles: { root: { keys: [r1, r2, r3], threshold: 2 }, release: { keys: [rel1, rel2] }, rollout: { keys: [roll1] }, commands: { keys: [cmd1] } },
    ...(anchors ? { anchors } : {}),
  };
}

const oneLine = (pem: string) => pem.replace(/\s+/g, "");

describe.skipIf(!haveOpenssl)("a root with two RSA-4096 CA anchors, kept in NVS (OpenSSL's certificates)", () => {
  let dir: string, big1: string, big2: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "xsota-root-storage-"));
    for (const name of ["big1", "big2"]) {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:4096", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.pem`), "-subj", `/CN=xsota ${name} RSA-4096 CA/O=an organisation with a long name`, "-days", "3650",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], { stdio: "ignore" });
    }
    big1 = readFileSync(join(dir, "big1.pem"), "utf8");
    big2 = readFileSync(join(dir, "big2.pem"), "utf8");
  }, 120_000);
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const v1 = () => signRoot(input(1), [r1, r2]);
  const v2 = () => signRoot(input(2, [{ id: "big1", pem: big1 }, { id: "big2", pem: big2 }]), [r1, r2]);
  const release = () => createManifest({ product: "sensor", version: "1.1.0", secureVersion: 1, url: "https://h/x.bin", size: 1000, sha256: "ab".repeat(32), signedAt: NOW, keys: [rel1] });

  it("rotates in through a rollout bundle, keeps NVS strings under 4,000 bytes, and reads back whole after a reboot", () => {
    const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ""), "base64").length;
    expect(der(big1)).toBeGreaterThan(1200); // what the old 4,000-byte single string could not hold twice with 7 keys
    const chip = SimChip.create({});
    const store = chip.store();
    const roots = new RootStore(store, toBase64(v1()), nodeCrypto);
    const bundle = createRollout({ release: release(), rollout: { id: "r", percent: 100 }, keys: [roll1], roots: [v2()], signedAt: NOW });
    expect(bundle.length).toBeLessThanOrEqual(ROOT_LIMITS.bundleBytes);
    const { root } = verifyBundle(bundle, roots, nodeCrypto, NOW + 1000);
    expect([root.version, root.anchors.map((a) => a.id)]).toEqual([2, ["big1", "big2"]]);
    for (const key of store.keys(DOMAINS.trust)) {
      const v = store.get(DOMAINS.trust, key);
      expect(typeof v === "string" ? Buffer.byteLength(v) : 0, key).toBeLessThan(4000);
    }
    expect(store.keys(DOMAINS.trust).filter((x) => x.startsWith("a.")).length).toBe(2);
    // a reboot: a new RootStore over the same NVS gives the same anchors, as OpenSSL wrote them
    const again = new RootStore(store, toBase64(v1()), nodeCrypto).current();
    expect(again.version).toBe(2);
    expect(oneLine(anchorsPem(again))).toBe(oneLine(big1 + big2));
  });

  it("a later root that retires one anchor drops its certificate from NVS; an altered one is refused, not trusted", () => {
    const store = SimChip.create({}).store();
    const roots = new RootStore(store, toBase64(v1()), nodeCrypto);
    roots.rotate([v2()], NOW);
    const before = store.keys(DOMAINS.trust).filter((x) => x.startsWith("a."));
    roots.rotate([signRoot(input(3, [{ id: "big2", pem: big2 }]), [r1, r2])], NOW);
    const after = store.keys(DOMAINS.trust).filter((x) => x.startsWith("a."));
    expect(after.length).toBe(1);
    expect(before).toContain(after[0]);
    expect(oneLine(anchorsPem(new RootStore(store, toBase64(v1()), nodeCrypto).current()))).toBe(oneLine(big2));
    // NVS altered under the root (a bit flip in the stored certificate): ROOT_INVALID, never another CA
    const key = after[0]!;
    const der = String(store.get(DOMAINS.trust, key));
    store.set(DOMAINS.trust, key, (der[0] === "M" ? "N" : "M") + der.slice(1));
    expect(codeOf(() => new RootStore(store, toBase64(v1()), nodeCrypto).current())).toBe("ROOT_INVALID");
  });

  it("a power cut at every flash operation of the rotation leaves root v1 or root v2, whole", () => {
    const shipped = toBase64(v1());
    const next = v2();
    // count the rotation's flash operations on a twin
    const twin = SimChip.create({});
    new RootStore(twin.store(), shipped, nodeCrypto).current();
    const start = twin.flash.ops;
    new RootStore(twin.store(), shipped, nodeCrypto).rotate([next], NOW);
    const ops = twin.flash.ops - start;
    expect(ops).toBeGreaterThanOrEqual(3); // two anchors and the root
    const seen = new Set<number>();
    for (let n = 1; n <= ops; n++) {
      const chip = SimChip.create({});
      const store = chip.store();
      new RootStore(store, shipped, nodeCrypto).current();
      chip.flash.cutPowerAt(n);
      expect(codeOf(() => new RootStore(store, shipped, nodeCrypto).rotate([next], NOW)), `cut at op ${n}`).toBe("FLASH_POWER_CUT");
      chip.flash.powerOn();
      const root = new RootStore(chip.store(), shipped, nodeCrypto).current();
      seen.add(root.version);
      if (root.version === 2) expect(oneLine(anchorsPem(root)), `cut at op ${n}`).toBe(oneLine(big1 + big2));
      else expect([root.version, root.anchors.length], `cut at op ${n}`).toEqual([1, 0]);
      // and the rotation completes after the reboot
      expect(new RootStore(chip.store(), shipped, nodeCrypto).rotate([next], NOW).version).toBe(2);
    }
    expect(seen.has(1)).toBe(true);
  });

  it("the tools refuse a root devices could not keep, and a bundle over 16 KB, naming the limit", () => {
    // 12 RSA-2048 keys (16 in all) and three large anchors: over the root payload limit
    const rsa = Array.from({ length: 12 }, () => generateKey("rsa-2048"));
    const huge: RootInput = { version: 2, signedAt: NOW, roles: { root: { keys: [r1, r2, r3], threshold: 2 }, release: { keys: rsa.slice(0, 8) }, rollout: { keys: rsa.slice(8) }, commands: { keys: [cmd1] } }, anchors: [{ id: "big1", pem: big1 }, { id: "big2", pem: big2 }, { id: "big3", pem: big1.replace("big1", "big3") }] };
    expect(() => rootPayload(huge)).toThrow(/root payload \d+ bytes > 9000/);
    // fits the payload, not NVS as stored: the same keys without anchors
    const manyKeys: RootInput = { version: 2, signedAt: NOW, roles: { root: { keys: [r1, r2, r3], threshold: 2 }, release: { keys: rsa.slice(0, 8) }, rollout: { keys: rsa.slice(8) }, commands: { keys: [cmd1] } } };
    expect(() => rootPayload(manyKeys)).toThrow(/as stored > 3999 \(NVS\)/);
    const chain = [v2(), signRoot(input(3, [{ id: "big1", pem: big1 }, { id: "big2", pem: big2 }]), [r1, r2])];
    expect(codeOf(() => createRollout({ release: release(), keys: [roll1], roots: chain, signedAt: NOW }))).toBe("MANIFEST_TOO_LARGE");
  }, 60_000);

  it("a root stored before anchors had their own keys (DER inline) is still read", () => {
    const store = SimChip.create({}).store();
    const small = signRoot(input(2), [r1, r2]);
    const payload = JSON.parse(Buffer.from(JSON.parse(Buffer.from(small).toString()).payload, "base64").toString()) as Record<string, unknown>;
    store.set(DOMAINS.trust, "root", JSON.stringify(payload));
    expect(new RootStore(store, toBase64(v1()), nodeCrypto).current().version).toBe(2);
  });
});
