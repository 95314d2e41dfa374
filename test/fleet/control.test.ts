/*
 * Per-update control end to end, in the Node engine and in the real XS engine: the controller
 * signs pause / resume / cancel / download-only / install for one device and sends it over a
 * real MQTT broker; a SimDevice (real firmware, real HTTPS host, virtual time) acts on it. The
 * download is capped (download.maxBytesPerSec) so that it is still in flight when the command
 * lands. The fleet view shows the held device (headless Chromium, Node run only).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { Lab, FACTORY } from "../../host-sim/lab/lab";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController } from "../../backend/fleet/controller";
import { startFleetView } from "../../backend/fleet/web";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";
import type { Engine } from "../../host-sim/engines/engine";
import type { SimChip } from "../../host-sim/chip/chip";
import type { AuditEvent } from "../../modules/events";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;
const CHROMIUM = "/usr/bin/chromium";

const V11 = { version: "1.1.0", secureVersion: 1 };
const DOWNLOAD = { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192, maxBytesPerSec: 4096 };
const drive = { maxVirtualMs: 24 * 3600_000, maxRealMs: 60_000, quietMs: 100 };

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
function partition(chip: SimChip, label: string): string {
  const p = chip.partition(label);
  const out = new Uint8Array(p.byteLength);
  p.read(0, out);
  return sha(out);
}

const xs = createXsEngine();
const engines: [string, Engine][] = [["node", createNodeEngine()], ["xs", xs]];
let lab: Lab;
let broker: Broker;
let dir: string;
let log: AuditLog;
let controller: FleetController;

beforeAll(async () => {
  lab = await Lab.create();
  broker = await startBroker({ kind: "aedes" });
  dir = mkdtempSync(join(tmpdir(), "xsota-control-"));
  log = new AuditLog(join(dir, "audit.db"));
  controller = await FleetController.start({ broker, log, clock: lab.clock, virtualClock: lab.clock, signingKey: lab.key, fanoutHoldMs: 150 });
  await xs.prepared();
}, 120_000);

afterAll(async () => {
  controller?.close();
  log?.close();
  await broker?.close();
  await xs.close();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function device(engine: Engine, config: Record<string, unknown>, onEvent: (e: AuditEvent, id: string) => void = () => {}) {
  const id = `240ac40c${String(++n).padStart(4, "0")}`;
  const pub = lab.publish(`control/${id}`, { image: V11 });
  const chip = lab.chip(FACTORY);
  const mqtt = new TcpMqttPort({ clock: lab.clock });
  const cfg = lab.config(pub.manifestUrl, { mqtt: { host: broker.host, port: broker.port }, download: DOWNLOAD, ...config });
  const dev = lab.device(engine, chip, cfg, { mqtt, deviceId: id, onBoot: () => mqtt.powerOff(), onEvent: (e) => onEvent(e, id) });
  const seen = (state: string) => controller.activity.activity(id) === state || log.history(id).some((e) => e.state === state);
  return { id, dev, chip, pub, seen, states: () => dev.events.map((e) => e.state) };
}

describe.each(engines)("per-update control (%s engine)", (name, engine) => {
  it("pause holds the download across a reboot, without counting an attempt; resume finishes it", async () => {
    let sent = false;
    const d = device(engine, {}, (e, id) => {
      if (!sent && e.state === "downloading" && e.progress === 25) {
        sent = true;
        void controller.control("pause", { devices: [id] });
      }
    });
    try {
      await d.dev.run((x) => x.last()?.state === "paused" && controller.activity.activity(d.id) === "paused", drive);
      const pausedAt = d.dev.last("paused")!;
      expect(pausedAt.progress).toBeGreaterThanOrEqual(25);
      expect(pausedAt.progress).toBeLessThan(100);
      d.dev.powerCycle();
      await d.dev.run((x) => x.counters.boots === 2 && x.last()?.state === "paused" && x.events.filter((e) => e.state === "paused").length === 2 && (log.device(d.id)?.online ?? false), drive);
      expect(d.dev.last("paused")!.detail).toMatch(/journaled/);
      await controller.control("resume", { devices: [d.id] });
      await d.dev.run((x) => x.last()?.state === "committed", drive);
      expect(d.dev.running?.version).toBe("1.1.0");
      expect(d.states()).not.toContain("failed");
      expect(d.dev.logs.some((l) => /download attempt \d+ failed/.test(l))).toBe(false);
      const requests = lab.host.stats.log.filter((r) => r.path === new URL(d.pub.imageUrl).pathname);
      expect(requests.length).toBe(2);
      expect(requests[1]!.range).toBe(`bytes=${/at byte (\d+)/.exec(d.dev.last("paused")!.detail!)![1]}-`); // resumed, not restarted
      await new Promise((r) => setTimeout(r, 300));
      expect(log.history(d.id).map((e) => e.state)).toEqual(expect.arrayContaining(["paused", "committed"]));
    } finally {
      await d.dev.stop();
    }
  }, 120_000);

  it("cancel ends the download, reported with its code; the running image and otadata are untouched", async () => {
    let sent = false;
    const d = device(engine, {}, (e, id) => {
      if (!sent && e.state === "downloading" && e.progress === 50) {
        sent = true;
        void controller.control("cancel", { devices: [id] });
      }
    });
    let app0 = "";
    let otadata = "";
    try {
      // As they are once the first boot is done (the bootloader may write otadata on it).
      await d.dev.run((x) => x.last()?.state === "downloading", drive);
      app0 = partition(d.chip, "app0");
      otadata = partition(d.chip, "otadata");
      await d.dev.run((x) => x.last()?.state === "cancelled", drive);
      expect(d.dev.last("cancelled")!.code).toBe("CONTROL_CANCELLED");
      expect(d.dev.running?.version).toBe("1.0.0");
      expect(partition(d.chip, "app0")).toBe(app0);
      expect(partition(d.chip, "otadata")).toBe(otadata);
      expect(d.dev.counters.boots).toBe(1);
      await d.dev.run(() => log.history(d.id).some((e) => e.state === "cancelled"), drive);
      expect(log.history(d.id).find((e) => e.state === "cancelled")!.code).toBe("CONTROL_CANCELLED");
    } finally {
      await d.dev.stop();
    }
  }, 120_000);

  it("download-only downloads outside the window and waits; the view shows it; install installs it", async () => {
    // The window (20:00-21:00 UTC) is far off: the virtual day starts at 00:00.
    const d = device(engine, { maintenanceWindow: { startMinute: 20 * 60, endMinute: 21 * 60 } });
    try {
      await d.dev.run((x) => x.last()?.code === "POLICY_WINDOW" && (log.device(d.id)?.online ?? false), drive);
      await controller.control("download-only", { devices: [d.id] });
      await d.dev.run((x) => x.logs.some((l) => /download-only/.test(l)), drive);
      await controller.checkNow();
      await d.dev.run((x) => x.last()?.state === "awaiting-install" && controller.activity.activity(d.id) === "awaiting-install", drive);
      expect(d.states()).toContain("verifying");
      expect(d.dev.running?.version).toBe("1.0.0");
      if (name === "node") {
        // `xsota fleet status` runs without the controller: it reads the held devices from the log.
        const out = execFileSync(process.execPath, [join(__dirname, "../../bin/xsota.js"), "fleet", "status", "--db", join(dir, "audit.db")], { env: { ...process.env, NO_COLOR: "1" } }).toString();
        expect(out).toMatch(new RegExp(`waiting to install: (.*, )?${d.id}`));
      }
      if (name === "node" && existsSync(CHROMIUM)) {
        const view = await startFleetView(controller);
        const browser = await chromium.launchPersistentContext(join(dir, "profile"), {
          executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        });
        try {
          const page = await browser.newPage();
          await page.goto(view.url);
          await page.waitForFunction(() => document.getElementById("awaiting-install-count")?.textContent === "1");
          expect(await page.getAttribute(`#control li[data-device="${d.id}"]`, "data-activity")).toBe("awaiting-install");
        } finally {
          await browser.close();
          await view.close();
        }
      }
      await controller.control("install", { devices: [d.id] });
      await d.dev.run((x) => x.last()?.state === "committed", drive);
      expect(d.dev.running?.version).toBe("1.1.0");
      const states = d.states();
      expect(states.indexOf("installing")).toBeGreaterThan(states.indexOf("awaiting-install"));
    } finally {
      await d.dev.stop();
    }
  }, 120_000);

  it("a control command for another device, or not signed by a trusted key, is refused", async () => {
    const d = device(engine, { maintenanceWindow: { startMinute: 20 * 60, endMinute: 21 * 60 } });
    try {
      await d.dev.run((x) => x.last()?.code === "POLICY_WINDOW" && (log.device(d.id)?.online ?? false), drive);
      const { controlMessage } = await import("../../backend/fleet/control");
      const { generateKey } = await import("../../backend/release/keys");
      const rogue = { ...generateKey("ecdsa-p256"), id: lab.key.id };
      const { subscribe } = await import("./helpers");
      const pubr = subscribe(broker, `rogue-${d.id}`, []);
      await pubr.ready;
      pubr.client.publish(`devices/${d.id}/cmd`, new TextEncoder().encode(controlMessage(rogue, "cancel", d.id, Date.now())), { qos: 1, retain: false });
      pubr.client.publish(`devices/${d.id}/cmd`, new TextEncoder().encode(controlMessage(lab.key, "cancel", "someone-else", Date.now() + 1)), { qos: 1, retain: false });
      // The reporter stores the refusal in the outbox and sends it (no agent transition).
      const invalid = () => log.history(d.id).filter((e) => e.code === "ANNOUNCE_INVALID");
      await d.dev.run(() => invalid().length === 2, drive);
      const details = invalid().map((e) => e.detail);
      expect(details[0]).toMatch(/SIG_INVALID/);
      expect(details[1]).toMatch(/addressed to someone-else/);
      pubr.client.close();
    } finally {
      await d.dev.stop();
    }
  }, 120_000);
});
