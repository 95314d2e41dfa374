import { describe, it, expect, afterAll, beforeAll } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan } from "../../backend/fleet/controller";
import { startFleetView, type FleetView } from "../../backend/fleet/web";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { ScriptedDevice } from "./scripted-device";

// Browser globals inside page callbacks (the project compiles without the DOM lib).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const Image: any;

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const key = generateKey("ecdsa-p256");

describe.skipIf(!hasChromium)("fleet view in headless Chromium (install: apt-get install -y chromium)", () => {
  let broker: Broker;
  let dir: string;
  let log: AuditLog;
  let controller: FleetController;
  let view: FleetView;
  let browser: BrowserContext;
  let devices: ScriptedDevice[];
  let clock: VirtualClock;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "xsota-view-"));
    broker = await startBroker({ kind: "aedes" });
    clock = new VirtualClock();
    log = new AuditLog(join(dir, "audit.db"));
    controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 150, sampleEveryMs: 60_000, thresholds: { minFailures: 50 } });
    devices = Array.from({ length: 24 }, (_, i) => new ScriptedDevice({
      id: `v${String(i).padStart(2, "0")}`, hardware: i < 3 ? "esp32-rev1" : "esp32-rev3", bad: i < 3, groups: [["lab", "field", "beta"][i % 3]!],
    }, clock, broker, keyConfigOf(key)));
    await driveUntil(clock, () => log.devices().length === 24, { maxRealMs: 10_000 });
    controller.sampleNow();
    const r = await controller.startRelease({ product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/x.bin", size: 65536, sha256: "cd".repeat(32) },
      parsePlan("25:10m,100:10m"), "thermo-1.1.0-view");
    await driveUntil(clock, () => log.release(r.id)?.status === "done" && log.devices().filter((d) => d.version === "1.1.0").length === 21, { maxRealMs: 20_000 });
    clock.advance(120_000);
    view = await startFleetView(controller);
    // A fresh profile dir (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await view?.close();
    devices?.forEach((d) => d.close());
    controller?.close();
    log?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows versions per group, progress over time, failures, and updates live", async () => {
    const page = await browser.newPage();
    await page.goto(view.url);
    await page.waitForFunction(() => document.getElementById("devices-total")?.textContent === "24");
    expect(await page.textContent("#release-status")).toBe("done");
    expect(await page.textContent("#stage-info")).toContain("stage 2/2 at 100 %");
    const cell = async (g: string, v: string) => page.textContent(`td[data-group="${g}"][data-version="${v}"]`);
    // Devices 0..2 (rev1, bad) are one per group and stayed on 1.0.0.
    for (const g of ["lab", "field", "beta"]) {
      expect(await cell(g, "1.1.0")).toBe("7");
      expect(await cell(g, "1.0.0")).toBe("1");
    }
    expect(await page.locator("#failures li").count()).toBe(3);
    expect(await page.locator('#chart path[data-version="1.1.0"]').count()).toBe(1);
    expect(await page.locator("#chart line[stroke-dasharray]").count()).toBe(2); // two stage markers

    const png = join(dir, "fleet-view.png");
    const shot = await page.screenshot({ path: png, fullPage: true });
    if (process.env.XSOTA_KEEP_SCREENSHOT) writeFileSync(process.env.XSOTA_KEEP_SCREENSHOT, shot);
    // Not blank: many distinct colours in the picture.
    const distinct = await page.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext("2d")!;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      return seen.size;
    }, shot.toString("base64"));
    expect(distinct).toBeGreaterThan(20);

    // Live: a device reports a new version and the page follows without a reload.
    const d = devices[5]!;
    d.running = { ...d.running, version: "1.2.0" };
    d.reporter.close();
    const { startReporter } = await import("../../modules/reporter");
    const { devicePorts } = await import("./helpers");
    d.reporter = startReporter(devicePorts(d.o.id, clock, d.store, d.mqtt), d.config, d, d.outbox);
    await page.waitForFunction(() => document.querySelector('td[data-group="beta"][data-version="1.2.0"]')?.textContent === "1", undefined, { timeout: 10_000 });
    await page.close();
  });
});
