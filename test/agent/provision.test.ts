/*
 * Configuration in layers (code overrides > provisioned in NVS > manifest defaults) and the
 * per-device provisioning in NVS ("xsota.dev"): precedence, arrays replacing, validation and
 * limits with named codes, a round trip through the simulated chip's NVS (saved and loaded as
 * a flash file), and the provisioned id and broker credentials reaching a real broker (aedes
 * with an authenticate hook).
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimChip } from "../../host-sim/chip/chip";
import { parseConfig, brokerOptions } from "../../modules/config";
import { configure, layerConfig, provision, readProvisioned, withDeviceId, PROVISION_KEYS, type Provisioned } from "../../modules/provision";
import { DOMAINS } from "../../modules/nvs-domains";
import { constant } from "../../modules/constant";
import { startReporter, type Reporter } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { VirtualClock } from "../../backend/clock";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { devicePorts, simSystem, subscribe, realWait } from "../fleet/helpers";
import { codeOf } from "../codes";
import { main } from "../../cli/main";

const keyA = keyConfigOf(generateKey("ecdsa-p256"));
const keyB = keyConfigOf(generateKey("ecdsa-p256"));

/** The manifest's config.xsota: what every device of the build gets (frozen, as mc/config is). */
const defaults = constant({
  product: "thermo",
  manifestUrl: "https://updates.example/thermo/stable/manifest.json",
  trustedKeys: [{ ...keyA, id: "placeholder" }],
  groups: ["default-a", "default-b", "default-c"],
  region: "eu",
  checkIntervalMs: 60_000,
  retry: { baseMs: 1000, maxMs: 60_000 },
  mqtt: { host: "broker.example", port: 8883, secure: true, keepaliveMs: 30_000 },
});

const detail = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return `${(e as { code?: string }).code} ${(e as { detail?: string }).detail}`;
  }
  return "no error";
};

describe("layerConfig: code overrides > provisioned (NVS) > manifest defaults", () => {
  it("each layer wins over the one below, key by key", () => {
    const region = (p: Provisioned, o?: object) => parseConfig(layerConfig(defaults, p, o)).region;
    expect(region({})).toBe("eu");
    expect(region({ region: "us" })).toBe("us");
    expect(region({ region: "us" }, { region: "ap" })).toBe("ap");
    const c = parseConfig(layerConfig(defaults, { host: "10.0.0.5", username: "dev-7", password: "pw" }, { retry: { maxMs: 120_000 }, mqtt: { keepaliveMs: 10_000 } }));
    // mqtt: host and credentials from NVS, port and secure from the manifest, keep-alive from code.
    expect(c.mqtt).toEqual({ host: "10.0.0.5", port: 8883, secure: true, keepaliveMs: 10_000, username: "dev-7", password: "pw" });
    // retry: baseMs from the manifest, maxMs from code.
    expect([c.retry.baseMs, c.retry.maxMs]).toEqual([1000, 120_000]);
    expect(c.checkIntervalMs).toBe(60_000);
  });

  it("arrays replace, never merge index by index", () => {
    const c = parseConfig(layerConfig(defaults, { groups: ["lab"] }, { trustedKeys: [{ type: keyB.type, spki: keyB.spki }] }));
    expect(c.groups).toEqual(["lab"]);
    // The user's key does not inherit the placeholder's id (Moddable's manifest merge did that).
    expect(c.trustedKeys).toEqual([{ type: keyB.type, spki: keyB.spki }]);
    expect(parseConfig(layerConfig(defaults, {}, { groups: [] })).groups).toEqual([]);
  });

  it("null in a higher layer deletes the key below; undefined is no value", () => {
    const c = parseConfig(layerConfig(defaults, { host: "10.0.0.5" }, { mqtt: null, region: undefined }));
    expect(c.mqtt).toBeUndefined();
    expect(c.region).toBe("eu");
  });

  it("leaves its inputs alone and returns a fresh tree", () => {
    const over = { mqtt: { port: 1883 } };
    const raw = layerConfig(defaults, { groups: ["g"] }, over) as { mqtt: object; trustedKeys: object[] };
    expect(raw.mqtt).not.toBe(defaults.mqtt);
    expect(raw.trustedKeys[0]).not.toBe(defaults.trustedKeys[0]);
    expect(over).toEqual({ mqtt: { port: 1883 } });
    expect(defaults.groups).toEqual(["default-a", "default-b", "default-c"]);
  });

  it("unknown keys reach parseConfig as they would unlayered; a bad layer or value is CONFIG_INVALID naming it", () => {
    const plain = { ...defaults, colour: "blue" };
    expect(parseConfig(layerConfig(defaults, {}, { colour: "blue" }))).toEqual(parseConfig(plain));
    expect(detail(() => layerConfig("[]", {}))).toMatch(/^CONFIG_INVALID defaults: expected an object/);
    expect(detail(() => layerConfig("{", {}))).toMatch(/^CONFIG_INVALID defaults: not JSON/);
    expect(parseConfig(layerConfig(JSON.stringify(defaults), { region: "us" })).region).toBe("us");
    expect(detail(() => layerConfig(defaults, {}, [1]))).toMatch(/^CONFIG_INVALID overrides: expected an object/);
    expect(detail(() => layerConfig(defaults, {}, JSON.parse('{"mqtt": {"__proto__": {"x": 1}}}')))).toMatch(/^CONFIG_INVALID mqtt\.__proto__/);
    expect(detail(() => parseConfig(layerConfig(defaults, {}, { mqtt: { port: "1883" } })))).toMatch(/^CONFIG_INVALID .*mqtt\.port/);
    // MQTT 3.1.1: a password only with a user name.
    expect(detail(() => parseConfig(layerConfig(defaults, { password: "pw" })))).toMatch(/^CONFIG_INVALID .*mqtt\.password: needs mqtt\.username/);
    expect(codeOf(() => parseConfig(layerConfig(defaults, {}, { mqtt: { clientId: "x".repeat(65) } })))).toBe("CONFIG_INVALID");
  });

  it("brokerOptions: the provisioned client id and credentials, else the device id", () => {
    const c = parseConfig(layerConfig(defaults, { username: "u", password: "p", clientId: "c-1" }));
    expect(brokerOptions(c.mqtt!, "aabbcc")).toEqual({ host: "broker.example", port: 8883, id: "c-1", user: "u", password: "p", keepalive: 30_000, secure: true });
    expect(brokerOptions(parseConfig(defaults).mqtt!, "aabbcc", "-diag").id).toBe("aabbcc-diag");
  });
});

describe("provisioning in NVS (xsota.dev)", () => {
  const values = { deviceId: "thermo-0042", groups: ["lab", "north"], region: "us-east", username: "dev-0042", password: "s3cret ✓", clientId: "thermo-0042-c", host: "mqtt.example", port: 8883, decryptionKey: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", decryptionHmacKey: "00".repeat(32) };

  it("round-trips through the simulated chip's NVS, saved to a flash file and loaded again", () => {
    const chip = SimChip.create({});
    expect(readProvisioned(chip.store())).toEqual({});
    expect(provision(chip.store(), values)).toEqual(values);
    const path = join(mkdtempSync(join(tmpdir(), "xsota-prov-")), "flash.bin");
    chip.save(path);
    const again = SimChip.load(path);
    expect(readProvisioned(again.store())).toEqual(values);
    expect(again.store().keys(DOMAINS.provision).sort()).toEqual(Object.values(PROVISION_KEYS).sort());
    for (const k of Object.values(PROVISION_KEYS)) expect(k.length).toBeLessThanOrEqual(15);
    // null deletes a key, an absent field stays.
    expect(provision(again.store(), { password: null, username: null, port: 1883 })).toEqual({ ...values, username: undefined, password: undefined, port: 1883 });
    expect(again.store().get(DOMAINS.provision, "pass")).toBeUndefined();
  });

  it("validates every value before it writes any", () => {
    const chip = SimChip.create({});
    provision(chip.store(), { deviceId: "dev-1" });
    const ops = chip.flash.ops;
    for (const [bad, key] of [
      [{ region: "ok", port: 70000 }, "xsota.dev/port"],
      [{ region: "ok", deviceId: "a/b" }, "xsota.dev/id"],
      [{ region: "ok", deviceId: "dev/+/#" }, "xsota.dev/id"],
      [{ region: "ok", groups: ["ok", ""] }, "xsota.dev/groups[1]"],
      [{ region: "ok", groups: "lab" }, "xsota.dev/groups"],
      [{ region: "ok", username: "" }, "xsota.dev/user"],
      [{ region: "ok", clientId: "c".repeat(65) }, "xsota.dev/client"],
      [{ region: "ok", host: "mqtt://h" }, "xsota.dev/host"],
      [{ region: "ok", colour: "blue" }, "unknown field colour"],
    ] as const) {
      expect(detail(() => provision(chip.store(), bad as never))).toContain(`CONFIG_INVALID`);
      expect(detail(() => provision(chip.store(), bad as never))).toContain(key);
    }
    expect(chip.flash.ops).toBe(ops);
    expect(readProvisioned(chip.store())).toEqual({ deviceId: "dev-1" });
  });

  it("limits: a group list over NVS's 4000 bytes is refused with a code, one that fits is kept", () => {
    const store = SimChip.create({}).store();
    const fits = Array.from({ length: 60 }, (_, i) => `group-${String(i).padStart(3, "0")}-${"x".repeat(50)}`); // 60 x 60 characters
    expect(provision(store, { groups: fits }).groups).toEqual(fits);
    const tooMany = Array.from({ length: 70 }, (_, i) => `group-${String(i).padStart(3, "0")}-${"x".repeat(50)}`);
    expect(detail(() => provision(store, { groups: tooMany }))).toMatch(/^CONFIG_INVALID xsota\.dev\/groups: 4411 bytes of JSON, NVS holds 3999/);
    expect(readProvisioned(store).groups).toEqual(fits);
    expect(codeOf(() => provision(store, { password: "p".repeat(4000) }))).toBe("CONFIG_INVALID");
    expect(detail(() => provision(store, { password: "p".repeat(4000) }))).not.toContain("ppp"); // no secret in the message
  });

  it("a bad stored value is CONFIG_INVALID naming the key", () => {
    const store = SimChip.create({}).store();
    store.set(DOMAINS.provision, "port", "1883");
    expect(detail(() => readProvisioned(store))).toMatch(/^CONFIG_INVALID xsota\.dev\/port: expected an integer/);
    store.set(DOMAINS.provision, "port", 1883);
    store.set(DOMAINS.provision, "groups", "[\"lab\"");
    expect(detail(() => readProvisioned(store))).toMatch(/^CONFIG_INVALID xsota\.dev\/groups: not JSON/);
    store.set(DOMAINS.provision, "groups", "[\"lab\", 7]");
    expect(detail(() => readProvisioned(store))).toMatch(/^CONFIG_INVALID xsota\.dev\/groups\[1\]/);
    store.set(DOMAINS.provision, "groups", "[\"lab\"]");
    store.set(DOMAINS.provision, "id", true);
    expect(detail(() => readProvisioned(store))).toMatch(/^CONFIG_INVALID xsota\.dev\/id/);
  });

  it("configure: NVS between the defaults and the overrides, validated", () => {
    const store = SimChip.create({}).store();
    provision(store, { deviceId: "thermo-9", region: "us", username: "u9", password: "p9" });
    const { config, provisioned } = configure(store, defaults, { region: "ap" });
    expect(provisioned.deviceId).toBe("thermo-9");
    expect([config.region, config.mqtt?.username, config.mqtt?.password, config.mqtt?.host]).toEqual(["ap", "u9", "p9", "broker.example"]);
    store.set(DOMAINS.provision, "port", 0);
    expect(detail(() => configure(store, defaults))).toMatch(/^CONFIG_INVALID xsota\.dev\/port/);
  });

  it("withDeviceId: the provisioned id instead of the MAC, the rest is the chip's", () => {
    const logs: string[] = [];
    const chip = simSystem("aabbccddeeff", "esp32-rev3", logs);
    expect(withDeviceId(chip, undefined)).toBe(chip);
    const s = withDeviceId(chip, "thermo-0042");
    expect([s.deviceId(), s.hardwareRevision(), s.chipId(), s.resetReason(), s.freeHeap()]).toEqual(["thermo-0042", "esp32-rev3", 0, "power-on", 100_000]);
    s.log("hello");
    expect(logs).toEqual(["hello"]);
  });
});

describe("xsota provision (CLI, in-process)", () => {
  it("writes into the flash file's NVS, clears, and refuses bad values and usage with their statuses", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "xsota-prov-cli-")), "flash.bin");
    SimChip.create({}).save(path);
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((t: string) => (out.push(String(t)), true)) as typeof process.stdout.write;
    process.stderr.write = ((t: string) => (out.push(String(t)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["provision", "--flash", path, "--id", "thermo-7", "--groups", "lab,north", "--user", "u7", "--password", "pw7", "--client-id", "c7", "--broker", "mqtt://10.0.0.5:1884"])).toBe(0);
      expect(readProvisioned(SimChip.load(path).store())).toEqual({ deviceId: "thermo-7", groups: ["lab", "north"], username: "u7", password: "pw7", clientId: "c7", host: "10.0.0.5", port: 1884 });
      expect(out.join("")).not.toContain("pw7");
      expect(await main(["provision", "--flash", path, "--clear", "password", "--clear", "clientId"])).toBe(0);
      expect(readProvisioned(SimChip.load(path).store())).toEqual({ deviceId: "thermo-7", groups: ["lab", "north"], username: "u7", host: "10.0.0.5", port: 1884 });
      expect(await main(["provision", "--flash", path, "--id", "a/b"])).toBe(1);
      expect(out.join("")).toContain("CONFIG_INVALID");
      expect(await main(["provision", "--flash", path, "--clear", "colour"])).toBe(2);
      expect(await main(["provision", "--flash", path, "--broker", "http://h:1"])).toBe(2);
      expect(await main(["provision", "--flash", join(path, "..", "nope.bin")])).toBe(3);
      expect(readProvisioned(SimChip.load(path).store()).deviceId).toBe("thermo-7");
    } finally {
      process.stdout.write = write;
      process.stderr.write = err;
    }
  });
});

describe("the provisioned id and credentials on a real broker (aedes, authenticate hook)", () => {
  let broker: Broker | undefined;
  const reporters: Reporter[] = [];
  afterEach(async () => {
    for (const r of reporters.splice(0)) r.close();
    await broker?.close();
    broker = undefined;
  });

  async function boot(password: string) {
    const seen: { id: string; user?: string; ok: boolean }[] = [];
    broker = await startBroker({
      authenticate: (id, user, pass) => {
        const ok = user === "dev-0042" ? pass === "s3cret" : id === "watch" && user === undefined;
        seen.push({ id, ok, ...(user !== undefined ? { user } : {}) });
        return ok;
      },
    });
    const watch = subscribe(broker, "watch", ["devices/#"]);
    await watch.ready;
    const chip = SimChip.create({});
    provision(chip.store(), { deviceId: "thermo-0042", groups: ["lab"], username: "dev-0042", password, clientId: "thermo-0042-c", host: broker.host, port: broker.port });
    // What src/xsota.ts is to do: NVS layer between the manifest's defaults and the code's overrides.
    const prov = readProvisioned(chip.store());
    const config = parseConfig(layerConfig({ ...defaults, trustedKeys: [keyA], mqtt: { host: "broker.example", port: 1 } }, prov, { checkIntervalMs: 0 }));
    const clock = new VirtualClock();
    const logs: string[] = [];
    const ports = { ...devicePorts("aabbccddeeff", clock, chip.store(), new TcpMqttPort({ clock })), system: withDeviceId(simSystem("aabbccddeeff", "esp32-rev3", logs), prov.deviceId) };
    const agent = { running: { version: "1.0.0", secureVersion: 1, slot: 0, project: "thermo" }, check: async () => ({}) };
    const reporter = startReporter(ports, config, agent, new Outbox(chip.store(), { capacity: 8 }), { reconnect: { baseMs: 60_000, maxMs: 60_000 } });
    reporters.push(reporter);
    return { seen, watch, reporter, logs };
  }

  it("the right password connects: client id and user name from NVS, topics under the provisioned id", async () => {
    const { seen, watch, reporter, logs } = await boot("s3cret");
    // a user name other than the device id: said once at start (deploy/mosquitto/acl would drop its publishes)
    expect(logs.filter((l) => l.includes("MQTT user name dev-0042 is not the device id thermo-0042"))).toHaveLength(1);
    await realWait(() => watch.messages.some((m) => m.topic === "devices/thermo-0042/state"));
    expect(reporter.connected).toBe(true);
    expect(seen).toContainEqual({ id: "thermo-0042-c", user: "dev-0042", ok: true });
    expect(watch.messages).toContainEqual({ topic: "devices/thermo-0042/version", payload: "1.0.0" });
    expect(JSON.parse(watch.messages.find((m) => m.topic === "devices/thermo-0042/state")!.payload).groups).toEqual(["lab"]);
    expect(watch.messages.some((m) => m.topic.includes("aabbccddeeff"))).toBe(false);
  });

  it("a wrong password is refused by the broker: not connected, nothing published, the refusal logged", async () => {
    const { seen, watch, reporter, logs } = await boot("wrong");
    await realWait(() => seen.some((s) => s.id === "thermo-0042-c"));
    await realWait(() => logs.some((l) => l.includes("MQTT_CONNECT")));
    expect(seen).toContainEqual({ id: "thermo-0042-c", user: "dev-0042", ok: false });
    expect(reporter.connected).toBe(false);
    expect(watch.messages.filter((m) => m.topic.startsWith("devices/thermo-0042/"))).toEqual([]);
  });
});
