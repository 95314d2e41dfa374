/* A minimal HTTPS client for the release tests: pinned CA, collects status, headers, body and how it ended. */
import { request } from "node:https";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  /** "complete", or "aborted" when the connection dropped mid-body. */
  end: "complete" | "aborted" | "error";
}

export function get(url: string, ca: string, headers: Record<string, string> = {}, method: "GET" | "HEAD" = "GET", onChunk?: (n: number) => void): Promise<Reply> {
  return new Promise((resolve) => {
    const req = request(url, { method, ca, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let settled = false;
      const done = (end: Reply["end"]) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: new Uint8Array(Buffer.concat(parts)), end });
      };
      res.on("data", (c: Buffer) => {
        parts.push(c);
        onChunk?.(c.length);
      });
      res.on("end", () => done(res.complete ? "complete" : "aborted"));
      res.on("aborted", () => done("aborted"));
      res.on("error", () => done("aborted"));
      res.on("close", () => done(res.complete ? "complete" : "aborted"));
    });
    req.on("error", () => resolve({ status: 0, headers: {}, body: new Uint8Array(), end: "error" }));
    req.end();
  });
}
