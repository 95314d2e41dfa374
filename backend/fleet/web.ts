/*
 * The fleet view, served by the controller on loopback: versions per group, rollout progress
 * over time (inline SVG, no CDN), failures, live through Server-Sent Events. The same server
 * carries the controller's small command API used by `xsota fleet halt|resume|force`:
 *
 *   GET  /              the page          GET  /api/status  JSON snapshot
 *   GET  /api/stream    SSE "status"      POST /api/halt | /api/resume | /api/force?group=G | /api/check[?group=G]
 *   POST /api/control/<pause|resume|cancel|download-only|install>?device=ID[&device=ID...] | ?group=G
 *
 * Who may call it: the server listens on 127.0.0.1 only; every request must name it in Host
 * (127.0.0.1 or localhost with this port: a DNS-rebinding page names its own host); a request
 * that carries an Origin must come from this server's own origin; and every POST carries the
 * token (`Authorization: Bearer <token>`, compared in constant time) that the controller writes
 * to its audit log (meta "api-token") for `xsota fleet` to read. Refused: 403 API_FORBIDDEN.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { OtaError, codeOf } from "../../modules/errors";
import type { FleetController } from "./controller";
import type { AuditStore, Awaitable, IngestIssues, ReleaseRow } from "./audit-store";
import { PAGE } from "./web-page";
import { ControlTracker, parseControlCommand, type ControlSnapshot } from "./control";

export interface FleetStatus {
  release: {
    id: string; version: string; status: string; flagged: boolean; reason: string | null; stage: number;
    plan: { percent: number; watchMs: number }[]; percent: number;
  } | null;
  stages: { idx: number; percent: number; started: number; ended: number | null }[];
  devices: number;
  online: number;
  totals: Record<string, number>;
  byGroup: Record<string, Record<string, number>>;
  failures: { device: string; state: string; code: string | null }[];
  samples: { time: number; version: string; count: number }[];
  received: number;
  duplicates: number;
  /**
   * Ingest problems, from the log: events whose (device, seq) came again with other content (kept
   * aside, not dropped) and device messages parked (malformed, or refused by the log; not retried).
   */
  ingest: IngestIssues;
  /** Per-update control: devices paused, awaiting install, awaiting reboot (the controller's view of their events). */
  control: ControlSnapshot;
}

type StatusSource = { log: AuditStore; current(): Awaitable<ReleaseRow | undefined>; received?: number; duplicates?: number; activity?: ControlTracker };

/** The snapshot the page and `xsota fleet status --json` show. */
export async function fleetStatus(controller: StatusSource): Promise<FleetStatus> {
  const log = controller.log;
  const r = await controller.current();
  const devices = await log.devices();
  return {
    release: r
      ? { id: r.id, version: r.version, status: r.status, flagged: r.flagged, reason: r.reason, stage: r.stage, plan: r.plan,
          percent: r.status === "halted" ? 0 : r.plan[r.stage]?.percent ?? 0 }
      : null,
    stages: r ? await log.stages(r.id) : [],
    devices: devices.length,
    online: devices.filter((d) => d.online).length,
    totals: await log.versionTotals(),
    byGroup: await log.versionsByGroup(),
    failures: r ? await log.failures(r.id, r.version) : [],
    samples: (await log.samples()).filter((s) => s.grp === "*").map((s) => ({ time: s.time, version: s.version, count: s.count })),
    received: controller.received ?? 0,
    duplicates: controller.duplicates ?? 0,
    ingest: await log.ingestIssues(5),
    control: (controller.activity ?? (await new ControlTracker().load(log))).snapshot(),
  };
}

export interface FleetView {
  url: string;
  port: number;
  /** The bearer token its POST requests need. */
  token: string;
  close(): Promise<void>;
}

/** Serve the view on 127.0.0.1. Throws PORT_BUSY. `token`: the API's bearer token (default: 32 random bytes, base64url). */
export async function startFleetView(controller: FleetController, options: { port?: number; token?: string } = {}): Promise<FleetView> {
  const token = options.token ?? randomBytes(32).toString("base64url");
  const tokenBytes = Buffer.from(`Bearer ${token}`);
  let origins: string[] = [];
  const streams = new Set<ServerResponse>();
  let pushTimer: ReturnType<typeof setTimeout> | undefined;
  const push = () => {
    if (pushTimer || streams.size === 0) return;
    pushTimer = setTimeout(() => {
      pushTimer = undefined;
      void fleetStatus(controller).then((status) => {
        const data = `event: status\ndata: ${JSON.stringify(status)}\n\n`;
        for (const s of streams) s.write(data);
      }, () => {});
    }, 200);
    pushTimer.unref();
  };
  const off = controller.onChange(push);

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => void answer(req, res));
  /** Why the request is refused, or undefined. */
  const refusal = (req: IncomingMessage): string | undefined => {
    const host = req.headers.host ?? "";
    if (!origins.some((o) => o === `http://${host}`)) return `Host ${host || "(none)"} is not this server`;
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.includes(origin)) return `Origin ${origin} is not this server's`;
    if (req.method !== "GET") {
      const given = Buffer.from(req.headers.authorization ?? "");
      if (given.length !== tokenBytes.length || !timingSafeEqual(given, tokenBytes)) return "no valid token (Authorization: Bearer ...)";
    }
    return undefined;
  };
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const refused = refusal(req);
    if (refused) return json(res, 403, { code: "API_FORBIDDEN", error: refused });
    try {
      if (req.method === "GET" && url.pathname === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(PAGE);
      } else if (req.method === "GET" && url.pathname === "/api/status") {
        json(res, 200, await fleetStatus(controller));
      } else if (req.method === "GET" && url.pathname === "/api/stream") {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
        res.write(`event: status\ndata: ${JSON.stringify(await fleetStatus(controller))}\n\n`);
        streams.add(res);
        req.on("close", () => streams.delete(res));
      } else if (req.method === "POST" && url.pathname === "/api/halt") {
        json(res, 200, await controller.halt(url.searchParams.get("reason") ?? "halted by operator"));
      } else if (req.method === "POST" && url.pathname === "/api/resume") {
        json(res, 200, await controller.resume());
      } else if (req.method === "POST" && url.pathname === "/api/force") {
        const group = url.searchParams.get("group");
        if (!group) throw new OtaError("USAGE", "force needs ?group=");
        json(res, 200, { group, devices: await controller.force(group) });
      } else if (req.method === "POST" && url.pathname.startsWith("/api/control/")) {
        const cmd = parseControlCommand(url.pathname.slice("/api/control/".length));
        const group = url.searchParams.get("group");
        const devices = await controller.control(cmd, { devices: url.searchParams.getAll("device"), ...(group ? { group } : {}) });
        json(res, 200, { cmd, devices });
      } else if (req.method === "POST" && url.pathname === "/api/check") {
        json(res, 200, { devices: await controller.checkNow(url.searchParams.get("group") ?? undefined) });
      } else {
        json(res, 404, { error: "not found" });
      }
    } catch (e) {
      json(res, codeOf(e) === "USAGE" ? 409 : 500, { code: codeOf(e), error: (e as Error).message });
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => reject(e.code === "EADDRINUSE" ? new OtaError("PORT_BUSY", `127.0.0.1:${options.port}`) : e));
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  origins = [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    token,
    async close() {
      off();
      clearTimeout(pushTimer);
      for (const s of streams) s.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
