/*
 * Roles and thresholds (issue 29, item 1; modules/roles.ts): real keys, real signatures, SIM's
 * NVS. The attacks: a stolen online (rollout) key, a root rotation below threshold, a root chain
 * with a skipped version, a key revoked by a newer root. End to end through the agent (Node and
 * XS engines, real HTTPS on loopback): a device in roles mode installs a release only when the
 * release and rollout roles both signed it, and follows a root rotation carried by the rollout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimChip } from "../../host-sim/chip/chip";
import { nodeCrypto } from "../../backend/crypto";
import { generateKey, type SigningKey } from "../../backend/release/keys";
import { createManifest } from "../../backend/release/manifest-tool";
import { createRollout, signRoot, type RootInput } from "../../backend/release/roles-tool";
import { RootStore, verifyBundle } from "../../modules/roles";
import { toBase64, utf8Decode, utf8Encode } from "../../modules/bytes";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { outcomeOf } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import type { Engine } from "../../host-sim/engines/engine";
import { codeOf } from "../codes";
import { startUpdateHost } from "../../backend/update-host";
import { makeServerCert } from "../../backend/release/pki";

const k = (): SigningKey => generateKey("ecdsa-p256");
const [root1, root2, root3, root4] = [k(), k(), k(), k()];
const [rel1, rel2, roll1, cmd1] = [k(), k(), k(), k()];
const NOW = Date.UTC(2026, 0, 1);

function rootInput(version: number, o: Partial<Record<"root" | "release" | "rollout" | "commands", SigningKey[]>> = {}, rootThreshold = 2): RootInput {
  return {
    version, signedAt: NOW,
    roles: {
      root: { keys: o.root ?? [root1, root2, root3], threshold: rootThreshold },
      release: { keys: o.release ?? [rel1] },
      rollout: { keys: o.rollout ?? [roll1] },
      commands: { keys: o.commands ?? [cmd1] },
    },
  };
}
const v1 = signRoot(rootInput(1), [root1, root2]);

/** A factory device shipped with root v1, run until it is idle; its chip (NVS) and device (logs) returned. */
async function runToIdle(lab: Lab, engine: Engine, manifestUrl: string, maxVirtualMs = 3600_000) {
  const chip = lab.chip(FACTORY);
  const dev = lab.device(engine, chip, lab.config(manifestUrl, { root: toBase64(v1) }));
  try {
    await dev.run((d) => d.idle, { maxVirtualMs, maxRealMs: 60_000, quietMs: 100 });
  } finally {
    await dev.stop();
  }
  return { chip, dev };
}

const release = (key: SigningKey, version = "1.1.0", sha = "ab") =>
  createManifest({ product: "sensor", version, secureVersion: 1, url: "https://h/x.bin", size: 1000, sha256: sha.repeat(32), signedAt: NOW, keys: [key] });

function device(shipped = v1) {
  const store = SimChip.create({}).store();
  return { store, roots: new RootStore(store, toBase64(shipped), nodeCrypto) };
}

describe("roles: release (offline) and rollout (online) must both sign", () => {
  it("a release signed by the release role with a rollout signed by the rollout role is accepted", () => {
    const { roots } = device();
    const bundle = createRollout({ release: release(rel1), rollout: { id: "r1", percent: 25 }, groups: ["lab"], signedAt: NOW, keys: [roll1] });
    const { manifest } = verifyBundle(bundle, roots, nodeCrypto, NOW + 1000);
    expect(manifest).toMatchObject({ product: "sensor", version: "1.1.0", rollout: { id: "r1", percent: 25 }, groups: ["lab"], metaVersion: NOW });
  });

  it("a stolen rollout key halts, re-targets and forces a signed release, but cannot name an image the release role did not sign", () => {
    const { roots } = device();
    const good = release(rel1);
    // what the thief can do: halt (0 %), force, re-target
    expect(verifyBundle(createRollout({ release: good, rollout: { id: "r1", percent: 0 }, keys: [roll1] }), roots, nodeCrypto, NOW).manifest.rollout!.percent).toBe(0);
    expect(verifyBundle(createRollout({ release: good, force: true, groups: ["all"], keys: [roll1] }), roots, nodeCrypto, NOW).manifest.force).toBe(true);
    // what the thief cannot: its own image, signed by the rollout key as a release
    const own = release(roll1, "9.9.9", "66");
    expect(codeOf(() => verifyBundle(createRollout({ release: own, rollout: { id: "r1", percent: 100 }, keys: [roll1] }), roots, nodeCrypto, NOW))).toBe("ROLE_THRESHOLD");
    // ...nor swap the carried release under a rollout made for the good one
    const swapped = JSON.parse(utf8Decode(createRollout({ release: good, keys: [roll1] }))) as Record<string, unknown>;
    swapped.release = toBase64(release(rel1, "1.2.0", "77")); // another release the release role did sign, not the one this rollout names
    expect(codeOf(() => verifyBundle(utf8Encode(JSON.stringify(swapped)), roots, nodeCrypto, NOW))).toBe("ROLLOUT_RELEASE");
    // a release key alone (no rollout signature) is not enough either: the rollout must be the rollout role's
    expect(codeOf(() => verifyBundle(createRollout({ release: good, keys: [rel1] }), roots, nodeCrypto, NOW))).toBe("ROLE_THRESHOLD");
    // nor does the rollout key's release field change what release fields say (the version, hash and size are the release's)
    const m = verifyBundle(createRollout({ release: good, keys: [roll1] }), roots, nodeCrypto, NOW).manifest;
    expect([m.version, m.sha256, m.size]).toEqual(["1.1.0", "ab".repeat(32), 1000]);
  });
});

describe("root rotation", () => {
  it("takes the next version signed by the old threshold and its own, stores it in NVS, and revokes what it drops", () => {
    const { store, roots } = device();
    expect(verifyBundle(createRollout({ release: release(rel1), keys: [roll1] }), roots, nodeCrypto, NOW).root.version).toBe(1);
    // v2: root3 replaced by root4, rel1 revoked for rel2
    const v2 = signRoot(rootInput(2, { root: [root1, root2, root4], release: [rel2] }), [root1, root2, root4]);
    expect(roots.rotate([v2], NOW).version).toBe(2);
    // the revoked release key's releases are refused after the rotation
    expect(codeOf(() => verifyBundle(createRollout({ release: release(rel1), keys: [roll1] }), roots, nodeCrypto, NOW))).toBe("ROLE_THRESHOLD");
    expect(verifyBundle(createRollout({ release: release(rel2), keys: [roll1] }), roots, nodeCrypto, NOW).manifest.version).toBe("1.1.0");
    // a reboot: the stored root is v2, not the shipped v1
    const again = new RootStore(store, toBase64(v1), nodeCrypto);
    expect(again.current().version).toBe(2);
    expect(codeOf(() => verifyBundle(createRollout({ release: release(rel1), keys: [roll1] }), again, nodeCrypto, NOW))).toBe("ROLE_THRESHOLD");
  });

  it("refuses a rotation below the old root's threshold, or below its own", () => {
    const { store, roots } = device();
    const one = signRoot(rootInput(2), [root1]); // 1 of the 2 needed
    expect(codeOf(() => roots.rotate([one], NOW))).toBe("ROLE_THRESHOLD");
    // the thief's own root keys: its new root signed by itself, and one old root key it stole
    const thief = signRoot(rootInput(2, { root: [root4], release: [roll1] }, 1), [root4, root1]);
    expect(codeOf(() => roots.rotate([thief], NOW))).toBe("ROLE_THRESHOLD");
    // old threshold met but not the new root's own (root4 of the new set did not sign: 1 of 2)
    const notOwn = signRoot(rootInput(2, { root: [root1, root4, k()] }), [root1, root2]);
    expect(codeOf(() => roots.rotate([notOwn], NOW))).toBe("ROLE_THRESHOLD");
    expect(roots.current().version).toBe(1);
    expect(store.keys("xsota.trust")).not.toContain("root");
  });

  it("refuses a chain with a skipped version, and applies a whole chain in order", () => {
    const { roots } = device();
    const v2 = signRoot(rootInput(2), [root1, root2]);
    const v3 = signRoot(rootInput(3), [root1, root3]);
    expect(codeOf(() => roots.rotate([v3], NOW))).toBe("ROOT_VERSION");
    expect(roots.current().version).toBe(1);
    // a rotation carried by the rollout document itself
    const bundle = createRollout({ release: release(rel1), roots: [v2, v3], keys: [roll1] });
    expect(verifyBundle(bundle, roots, nodeCrypto, NOW).root.version).toBe(3);
    // the same chain again is a no-op; an older root is never taken back
    expect(roots.rotate([v2, v3], NOW).version).toBe(3);
    expect(codeOf(() => roots.rotate([signRoot(rootInput(5), [root1, root2])], NOW))).toBe("ROOT_VERSION");
  });

  it("an expired root is refused until a fresh one is rotated in", () => {
    const short = signRoot({ ...rootInput(1), expires: NOW + 1000 }, [root1, root2]);
    const { roots } = device(short);
    const bundle = createRollout({ release: release(rel1), keys: [roll1], signedAt: NOW });
    expect(codeOf(() => verifyBundle(bundle, roots, nodeCrypto, NOW + 2000))).toBe("ROOT_EXPIRED");
    const v2 = signRoot({ ...rootInput(2), signedAt: NOW + 1500 }, [root1, root2]);
    const withRoot = createRollout({ release: release(rel1), keys: [roll1], roots: [v2], signedAt: NOW });
    expect(verifyBundle(withRoot, roots, nodeCrypto, NOW + 2000).root.version).toBe(2);
  });
});

describe("a device in roles mode, end to end", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await Lab.create({ key: rel1 }); });
  afterAll(async () => { await lab.close(); });

  for (const name of ["node", "xs"] as const) {
    it(`(${name} engine) installs the release both roles signed; refuses the stolen rollout key's own image`, async () => {
      const engine: Engine = name === "node" ? createNodeEngine() : await createXsEngine();
      try {
        const run = async (bundle: (p: ReturnType<Lab["publish"]>) => Uint8Array) => {
          const dir = `roles-${name}-${lab.nextRun()}`;
          const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
          lab.host.setRoute(`/${dir}/release.json`, bundle(p));
          const { dev } = await runToIdle(lab, engine, p.manifestUrl);
          return outcomeOf(dir, dev);
        };
        // the thief's image, signed as a release by the rollout key it holds
        const thief = await run((p) => createRollout({ release: createManifest({ product: "xsota-demo", version: "1.1.0", secureVersion: 1, url: p.imageUrl, image: p.image, keys: [roll1] }), keys: [roll1] }));
        expect([thief.running?.version, thief.final, thief.code]).toEqual(["1.0.0", "refused", "ROLE_THRESHOLD"]);
        // a release whose manifest is the plain (legacy) envelope: no rollout document, not taken in roles mode
        const legacy = await run((p) => p.envelope);
        expect([legacy.running?.version, legacy.final]).toEqual(["1.0.0", "refused"]);
        const good = await run((p) => createRollout({ release: p.envelope, rollout: { id: "r", percent: 100 }, keys: [roll1] }));
        expect([good.running?.version, good.final]).toEqual(["1.1.0", "committed"]);
      } finally {
        await engine.close?.();
      }
    }, 240_000);
  }
});

describe("CA rollover through root metadata (issue 29 item 6)", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await Lab.create({ key: rel1 }); });
  afterAll(async () => { await lab.close(); });

  for (const name of ["node", "xs"] as const) it(`(${name} engine) a device pinned to CA1 takes CA2 from a new root, then downloads from a host with a CA2 certificate over real HTTPS`, async () => {
    const engine: Engine = name === "node" ? createNodeEngine() : await createXsEngine();
    const leaf2 = await makeServerCert(lab.otherCa, { hosts: ["127.0.0.1", "localhost"] });
    const host2 = await startUpdateHost({ cert: leaf2.certPem, key: leaf2.keyPem, clock: lab.clock, routes: {} });
    try {
      const dir = `ca-${name}-${lab.nextRun()}`;
      const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
      host2.setRoute(`/${dir}/fw.bin`, p.image); // the image now lives on the CA2 host
      const rel = createManifest({ product: "xsota-demo", version: "1.1.0", secureVersion: 1, url: `${host2.url}/${dir}/fw.bin`, image: p.image, keys: [rel1] });
      const run = async (bundle: Uint8Array) => {
        lab.host.setRoute(`/${dir}/release.json`, bundle);
        const { chip, dev } = await runToIdle(lab, engine, p.manifestUrl, 6 * 3600_000);
        return { o: outcomeOf(dir, dev), chip };
      };
      // root v1 has no anchors: the pinned CA1 alone, and the CA2 host is not trusted
      const before = await run(createRollout({ release: rel, keys: [roll1] }));
      expect([before.o.running?.version, before.o.final, before.o.code]).toEqual(["1.0.0", "failed", "HTTP_TLS"]);
      // root v2 adds CA2 next to CA1 (the overlap), carried by the rollout document
      const v2 = signRoot({ ...rootInput(2), anchors: [{ id: "ca2", pem: lab.otherCa.caCertPem }, { id: "ca1", pem: lab.ca.caCertPem }] }, [root1, root2]);
      const after = await run(createRollout({ release: rel, keys: [roll1], roots: [v2] }));
      expect([after.o.running?.version, after.o.final]).toEqual(["1.1.0", "committed"]);
      // the anchors live in NVS with the root, each with its expiry
      const stored = new RootStore(after.chip.store(), toBase64(v1), nodeCrypto).current();
      expect(stored.version).toBe(2);
      expect(stored.anchors.map((a) => a.id)).toEqual(["ca2", "ca1"]);
      expect(stored.anchors[0]!.notAfter).toBeGreaterThan(NOW);
      // the same v2 signed below the root threshold does not bring CA2: the device stays on CA1
      const weak = signRoot({ ...rootInput(2), anchors: [{ id: "ca2", pem: lab.otherCa.caCertPem }] }, [root1]);
      const refused = await run(createRollout({ release: rel, keys: [roll1], roots: [weak] }));
      expect([refused.o.running?.version, refused.o.final, refused.o.code]).toEqual(["1.0.0", "refused", "ROLE_THRESHOLD"]);
    } finally {
      await host2.close();
      await engine.close();
    }
  }, 240_000);
});

describe("a device that missed root rotations walks them (root.<n>.json beside the manifest, as TUF's N+1.root.json)", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await Lab.create({ key: rel1 }); });
  afterAll(async () => { await lab.close(); });

  for (const name of ["node", "xs"] as const) it(`(${name} engine) a device on root 1 takes 2 and 3 from the host, then the bundle's 4; without root 3 it stops at 2 and refuses the bundle ROOT_VERSION`, async () => {
    const engine: Engine = name === "node" ? createNodeEngine() : await createXsEngine();
    const v2 = signRoot(rootInput(2), [root1, root2]);
    const v3 = signRoot(rootInput(3), [root1, root2]);
    // root 4 revokes root3 and rel2: signed by root 3's threshold and its own
    const v4 = signRoot(rootInput(4, { root: [root1, root2, root4] }), [root1, root2]);
    try {
      const run = async (withRoot3: boolean) => {
        const dir = `walk-${name}-${lab.nextRun()}`;
        const p = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1 } });
        lab.host.setRoute(`/${dir}/release.json`, createRollout({ release: p.envelope, rollout: { id: "r", percent: 100 }, keys: [roll1], roots: [v4] }));
        lab.host.setRoute(`/${dir}/root.2.json`, v2);
        if (withRoot3) lab.host.setRoute(`/${dir}/root.3.json`, v3);
        const { chip, dev } = await runToIdle(lab, engine, p.manifestUrl);
        return { o: outcomeOf(dir, dev), root: new RootStore(chip.store(), toBase64(v1), nodeCrypto).current().version, logs: dev.logs };
      };
      const walked = await run(true);
      expect([walked.o.running?.version, walked.o.final, walked.root], walked.logs.slice(-6).join("\n")).toEqual(["1.1.0", "committed", 4]);
      expect(walked.logs.filter((l) => /ota root \d taken/.test(l))).toEqual(["ota root 2 taken (root.2.json)", "ota root 3 taken (root.3.json)"]);
      const stuck = await run(false);
      expect([stuck.o.running?.version, stuck.o.final, stuck.o.code, stuck.root]).toEqual(["1.0.0", "refused", "ROOT_VERSION", 2]);
      expect(stuck.logs.some((l) => l.startsWith("ota root walk stopped: HTTP_NOT_FOUND"))).toBe(true);
    } finally {
      await engine.close?.();
    }
  }, 240_000);
});

describe("commands role", () => {
  it("a control command needs the commands role's threshold in roles mode; the rollout key alone is not a commands key", async () => {
    const { decodeCommand } = await import("../../modules/commands");
    const { signControl } = await import("../../backend/fleet/control");
    const { addSignature } = await import("../../backend/release/manifest-tool");
    const { verifyRole } = await import("../../modules/roles");
    const cmd2 = k();
    const root = signRoot(rootInput(1, { commands: [cmd1, cmd2] }), [root1, root2]);
    const input = rootInput(1, { commands: [cmd1, cmd2] });
    input.roles.commands.threshold = 2;
    const strict = signRoot(input, [root1, root2]);
    for (const [shipped, needed] of [[root, 1], [strict, 2]] as const) {
      const { store, roots } = device(shipped);
      const trust = { verifyRelease: (e: Uint8Array) => verifyBundle(e, roots, nodeCrypto, NOW).manifest, verifyCommand: (env: Parameters<typeof verifyRole>[0]) => void verifyRole(env, roots.current(), "commands", nodeCrypto) };
      const msg = (env: Uint8Array) => utf8Encode(JSON.stringify({ cmd: "pause", envelope: toBase64(env) }));
      const one = signControl(cmd1, "pause", "dev1", NOW + 1);
      const byRollout = signControl(roll1, "pause", "dev1", NOW + 2);
      const two = addSignature(signControl(cmd1, "pause", "dev1", NOW + 3), cmd2);
      expect(decodeCommand(msg(byRollout), [], nodeCrypto, "dev1", store, trust).kind).toBe("invalid");
      expect(decodeCommand(msg(one), [], nodeCrypto, "dev1", store, trust).kind).toBe(needed === 1 ? "control" : "invalid");
      expect(decodeCommand(msg(two), [], nodeCrypto, "dev1", store, trust).kind).toBe("control");
    }
  });
});
