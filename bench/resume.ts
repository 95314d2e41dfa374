/*
 * Resume efficiency: the update host closes the connection once the image body reaches 10%, 50%
 * or 90% (SIGN's "cut-at" fault, once), the agent resumes with a Range request; the host's log
 * says how many body bytes it sent for the image in all. Goal: image size + at most one 4 KB
 * chunk per drop (the agent restarts from its last whole block). One run per cut point, and one
 * with all three drops in a single update.
 */
import { Lab, FACTORY } from "../host-sim/lab/lab";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import { DEFAULTS } from "../modules/config";
import type { Fault } from "../backend/update-host";

export const CHUNK = 4096;

export interface ResumeCase {
  /** Cut points as fractions of the image. */
  cuts: number[];
  imageBytes: number;
  /** Body bytes the host sent for the image path (all requests). */
  bytesSent: number;
  requests: number;
  /** bytesSent - imageBytes, and per drop. */
  extra: number;
  extraPerDrop: number;
  final: string | null;
  ok: boolean;
  /** The agent's download log lines (why it resumed where it did). */
  downloadLog: string[];
  /** The host's log of the image requests: [status, range, body bytes]. */
  requestsLog: Array<[number, string | null, number]>;
}

let runs = 0;

/** `encryptFor`: publish an esp_encrypted_img file for this device key (PEM), which the device then holds (issue 31: restarts from 0). */
export async function resumeCase(lab: Lab, size: number, cuts: number[], encryptFor?: string): Promise<ResumeCase> {
  const engine = createNodeEngine();
  try {
    const dir = `bench-resume-${++runs}`;
    const image = { version: "1.1.0", secureVersion: 1, size };
    const rel = lab.publish(dir, encryptFor ? { image, encrypt: { key: encryptFor } } : { image });
    const imagePath = new URL(rel.imageUrl).pathname;
    const faults: Fault[] = cuts.map((f) => ({ kind: "cut-at", at: Math.floor(rel.image.length * f), times: 1 }));
    lab.setFault(imagePath, faults);
    const chip = lab.chip(FACTORY);
    const config = lab.config(rel.manifestUrl, { download: { ...DEFAULTS.download }, retry: { baseMs: 1000, maxMs: 8000, maxAttempts: cuts.length + 4 }, ...(encryptFor ? { decryptionKey: encryptFor } : {}) });
    const device = lab.device(engine, chip, config);
    try {
      await device.run((d) => d.idle, { maxVirtualMs: 6 * 3600_000, maxRealMs: 120_000, quietMs: 250 });
    } finally {
      await device.stop();
    }
    const log = lab.host.stats.log.filter((e) => e.path === imagePath && e.method === "GET");
    const bytesSent = log.reduce((a, e) => a + e.bytes, 0);
    const extra = bytesSent - rel.image.length;
    const final = [...device.events].reverse().find((e) => ["committed", "rolled-back", "failed", "refused"].includes(e.state))?.state ?? null;
    return {
      cuts,
      imageBytes: rel.image.length,
      bytesSent,
      requests: log.length,
      extra,
      extraPerDrop: cuts.length ? extra / cuts.length : extra,
      final,
      ok: final === "committed" && extra <= cuts.length * CHUNK,
      downloadLog: device.logs.filter((l) => l.startsWith("download")),
      requestsLog: log.map((e) => [e.status, e.range ?? null, e.bytes]),
    };
  } finally {
    await engine.close();
  }
}

/** 10%, 50%, 90% one at a time, then all three in one update. */
export async function resume(options: { size?: number; lab?: Lab } = {}): Promise<ResumeCase[]> {
  const size = options.size ?? 1536 * 1024;
  const lab = options.lab ?? (await Lab.create());
  try {
    const out: ResumeCase[] = [];
    for (const cuts of [[0.1], [0.5], [0.9], [0.1, 0.5, 0.9]]) out.push(await resumeCase(lab, size, cuts));
    return out;
  } finally {
    if (!options.lab) await lab.close();
  }
}
