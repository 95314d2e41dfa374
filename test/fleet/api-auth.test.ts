/*
 * The controller's HTTP API (backend/fleet/web.ts) on loopback, as an attacker would try it:
 * a POST without the token or with a wrong one, a page on another origin (its Origin header), a
 * DNS-rebinding page (its own name in Host), each refused with 403 API_FORBIDDEN and the release
 * left as it was; the operator's `xsota fleet halt` (token from the audit log) goes through.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { request } from "node:http";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan } from "../../backend/fleet/controller";
import { startFleetView, type FleetView } from "../../backend/fleet/web";
import { generateKey } from "../../backend/release/keys";

const ROOT = join(import.meta.dirname, "../..");

function call(view: FleetView, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { code?: string; error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: view.port, method, path, headers: { host: `127.0.0.1:${view.port}`, ...headers } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: res.headers["content-type"]?.startsWith("application/json") ? JSON.parse(text) : {} }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the controller's HTTP API refuses what is not the operator", () => {
  let dir: string, broker: Broker, log: AuditLog, controller: FleetController, view: FleetView;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "xsota-api-"));
    broker = await startBroker();
    log = new AuditLog(join(dir, "fleet.db"));
    controller = await FleetController.start({ broker, log, clock: new VirtualClock(), signingKey: generateKey("ecdsa-p256") });
    view = await startFleetView(controller);
    log.setMeta("api", view.url);
    log.setMeta("api-token", view.token);
    await controller.startRelease({ product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/x.bin", size: 1024, sha256: "ab".repeat(32) },
      parsePlan("5:10m,100"), "thermo-1.1.0-api");
  }, 30_000);
  afterAll(async () => {
    await view?.close();
    controller?.close();
    log?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = () => log.release("thermo-1.1.0-api")?.status;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it("a POST without the token, with a wrong one, or with a token of another length: 403, nothing done", async () => {
    for (const headers of [{}, bearer("x".repeat(view.token.length)), bearer("short"), { authorization: view.token }]) {
      const r = await call(view, "POST", "/api/halt", headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body).toMatchObject({ code: "API_FORBIDDEN", error: expect.stringContaining("token") });
    }
    expect(status()).toBe("running");
  });

  it("a page on another origin (its Origin), even with the token: 403", async () => {
    const r = await call(view, "POST", "/api/halt", { ...bearer(view.token), origin: "http://evil.example" });
    expect(r).toMatchObject({ status: 403, body: { code: "API_FORBIDDEN", error: "Origin http://evil.example is not this server's" } });
    expect(status()).toBe("running");
  });

  it("a DNS-rebinding page (its own name in Host) cannot even read the status", async () => {
    const r = await call(view, "GET", "/api/status", { host: `evil.example:${view.port}` });
    expect(r).toMatchObject({ status: 403, body: { code: "API_FORBIDDEN" } });
    expect((await call(view, "GET", "/api/status")).status).toBe(200);
    expect((await call(view, "GET", "/api/status", { host: `localhost:${view.port}`, origin: `http://localhost:${view.port}` })).status).toBe(200);
  });

  it("the operator's xsota fleet halt reads the token from the audit log and goes through", async () => {
    const out = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [join(ROOT, "bin/xsota.js"), "fleet", "halt", "--db", join(dir, "fleet.db")], { env: { ...process.env, NO_COLOR: "1" } },
        (e, _stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, stderr })));
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(status()).toBe("halted");
  }, 60_000);
});
