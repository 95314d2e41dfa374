/*
 * The XS bridge, proven with a fixture firmware that touches every port kind (flash, store,
 * crypto, timers, real HTTPS on loopback, real MQTT over TCP, system): the same firmware runs
 * in the Node engine and inside the real XS engine, and reports exactly the same lines.
 * Also: the worker runs under SES lockdown with no host globals left for modules/.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, createHash } from "node:crypto";
import { join } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { SimFlash } from "../../host-sim/chip/flash";
import { NodeHttp } from "../../host-sim/engines/ports/http";
import { SimSystem } from "../../host-sim/engines/ports/system";
import { nodeCrypto } from "../../backend/crypto";
import { startUpdateHost, type UpdateHost } from "../../backend/update-host";
import { makeCa, makeServerCert } from "../../backend/release/pki";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { createXsEngine, type XsRunningFirmware } from "../../host-sim/engines/xs";
import type { Engine } from "../../host-sim/engines/engine";
import type { Ports } from "../../modules/ports";
import { toHex } from "../../modules/bytes";
import { bootFirmware, type FixtureConfig } from "./fixtures/firmware";
import { flashPort, memoryStore, nodeEngineFor } from "./helpers";

const FIXTURE = join(import.meta.dirname, "fixtures/firmware.ts");
const xs = createXsEngine({ firmware: FIXTURE });
const node = nodeEngineFor(bootFirmware);
const body = new Uint8Array(randomBytes(70_000));
let host: UpdateHost;
let broker: Broker;
let ca: string;
let config: FixtureConfig;
const clock = new VirtualClock();

beforeAll(async () => {
  const authority = await makeCa();
  ca = authority.caCertPem;
  const cert = await makeServerCert(authority, { hosts: ["127.0.0.1"] });
  host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, clock, routes: { "/fx.bin": body } });
  broker = await startBroker({ kind: "aedes" });
  const secret = p256.utils.randomSecretKey();
  const digest = createHash("sha256").update("fixture").digest();
  const sig = p256.sign(digest, secret, { prehash: false });
  config = {
    url: `${host.url}/fx.bin`,
    size: body.length,
    ecdsa: { publicKey: toHex(p256.getPublicKey(secret, false)), digest: digest.toString("hex"), signature: toHex(sig) },
    mqtt: { host: broker.host, port: broker.port },
  };
  await xs.prepared();
});

afterAll(async () => {
  await xs.close();
  await host?.close();
  await broker?.close();
});

async function runFixture(engine: Engine, deviceId: string) {
  const flash = new SimFlash({ size: 256 * 1024 });
  const lines: string[] = [];
  const system = new SimSystem({ deviceId, hardware: "esp32-rev3", resetReason: "power-on", onRestart() {}, onLog: (l) => lines.push(l) });
  const start = clock.now();
  const ports: Ports = {
    flash: flashPort(flash, { scratch: [0, 128 * 1024] }),
    store: memoryStore(),
    http: new NodeHttp({ ca, clock }),
    crypto: nodeCrypto,
    mqtt: new TcpMqttPort({ clock }),
    clock: {
      now: () => clock.now() - start,
      wallTime: () => clock.epoch + clock.now() - start,
      setTimeout: (cb, ms) => clock.setTimeout(cb, ms),
      clearTimeout: (id) => clock.clearTimeout(id),
    },
    system,
  };
  const fw = await engine.boot(ports, { config, behavior: "healthy" });
  await driveUntil(clock, () => lines.some((l) => l.startsWith("@panic")), { maxRealMs: 20_000 });
  const probe = engine.name === "xs" ? await (fw as XsRunningFirmware).probe() : undefined;
  await fw.stop();
  return { lines, probe, virtualMs: clock.now() - start, flash };
}

describe("XS bridge: every port kind, same lines in both engines", () => {
  let n: Awaited<ReturnType<typeof runFixture>>;
  let x: Awaited<ReturnType<typeof runFixture>>;

  beforeAll(async () => {
    n = await runFixture(node, "aabbccddee01");
    x = await runFixture(xs, "aabbccddee01");
  });

  it("the fixture reports what the ports did (checked on the Node run)", () => {
    const get = (what: string) => n.lines.filter((l) => l.startsWith("@fx ")).map((l) => JSON.parse(l.slice(4)) as [string, unknown]).find((e) => e[0] === what)?.[1];
    expect(get("flash-roundtrip")).toBe(true);
    expect(get("flash-oob")).toMatchObject({ error: "FLASH_OUT_OF_BOUNDS" });
    expect(get("flash-nolabel")).toMatchObject({ error: "FLASH_NO_PARTITION" });
    expect(get("store-get")).toEqual(["héllo ✓", 42, true, "010203ff", true]);
    expect(get("store-longkey")).toMatchObject({ error: "STORE_KEY" });
    expect(get("store-float")).toMatchObject({ error: "STORE_VALUE" });
    expect(get("sha256")).toBe(createHash("sha256").update("hello world").digest("hex"));
    expect(get("ecdsa")).toBe(true);
    expect(get("ecdsa-tampered")).toBe(false);
    const digest = createHash("sha256").update(body.subarray(100)).digest("hex");
    expect(get("http")).toEqual([206, body.length - 100, digest, digest]);
    expect(get("http-insecure")).toBe("HTTP_INSECURE_URL");
    expect(get("mqtt-message")).toEqual([`fx/aabbccddee01/echo`, "000102fa"]);
    expect(get("mqtt-published")).toBe(true);
    expect(get("timers")).toEqual(["a@1000", "b@2000"]);
    expect(n.lines[n.lines.length - 1]).toBe("@panic fixture panics on purpose");
  });

  it("XS produces exactly the same lines, flash bytes and virtual time", () => {
    expect(x.lines).toEqual(n.lines);
    expect(x.virtualMs).toBe(n.virtualMs);
    const a = new Uint8Array(128 * 1024), b = new Uint8Array(128 * 1024);
    n.flash.read(0, a);
    x.flash.read(0, b);
    expect(toHex(createHash("sha256").update(b).digest())).toBe(toHex(createHash("sha256").update(a).digest()));
  });

  it("the worker runs under SES lockdown, with no host globals left for modules/", () => {
    expect(x.probe).toMatchObject({ lockdown: true, frozenIntrinsics: true, hardened: true, absent: [] });
  });
});
