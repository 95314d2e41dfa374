/*
 * `xsota fleet status --root F` warns about the devices' TLS anchors (root metadata, issue 29
 * item 6) that expire within 90 days: real CA certificates, the real CLI in process.
 */
import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeCa } from "../../backend/release/pki";
import { generateKey } from "../../backend/release/keys";
import { signRoot } from "../../backend/release/roles-tool";
import { AuditLog } from "../../backend/fleet/audit-log";
import { xsotaInProcess } from "../release/in-process-cli";

describe("fleet status and the TLS anchors", () => {
  it("warns about an anchor that expires within 90 days, not about one that does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-anchors-"));
    try {
      const soon = await makeCa(undefined, "CA ending soon", { days: 30 });
      const later = await makeCa(undefined, "next CA", { days: 3650 });
      const k = generateKey("ecdsa-p256");
      const root = signRoot({ version: 2, roles: { root: { keys: [k] }, release: { keys: [k] }, rollout: { keys: [k] }, commands: { keys: [k] } }, anchors: [{ id: "ca-old", pem: soon.caCertPem }, { id: "ca-next", pem: later.caCertPem }] }, [k]);
      writeFileSync(join(dir, "root.json"), root);
      const db = join(dir, "fleet.db");
      new AuditLog(db).close();
      const text = await xsotaInProcess("fleet", "status", "--db", db, "--root", join(dir, "root.json"));
      expect(text.code).toBe(0);
      expect(text.out).toMatch(/warning.*TLS anchor ca-old expires \d{4}-\d\d-\d\d \(in (29|30) days\)/);
      expect(text.out).not.toMatch(/ca-next/);
      const json = await xsotaInProcess("fleet", "status", "--db", db, "--root", join(dir, "root.json"), "--json");
      expect(JSON.parse(json.out).expiringAnchors.map((a: { id: string }) => a.id)).toEqual(["ca-old"]);
      // without --root: no anchors, no warning
      expect((await xsotaInProcess("fleet", "status", "--db", db)).out).not.toMatch(/TLS anchor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
