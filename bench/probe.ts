/*
 * Instruments for the bench, outside the code they measure:
 * - probeEngine(engine): an Engine whose boots see Ports wrapped with counters and timers (calls,
 *   bytes and real ms spent in flash, hashing, HTTP reads, store), the request time of the image
 *   and the time of system.restart(). The same wrapper serves both engines: in XS every port call
 *   crosses the bridge into these same wrapped objects, so the Node-side cost is measured alike.
 * - FlashRecorder: wraps one SimFlash's write/erase (bootloader and NVS included, which the
 *   Ports do not see) and books every op to its partition, with per-sector erase counts and the
 *   bytes each sector received since its last erase (a rewrite shows up there).
 */
import type { Engine, FirmwareBoot, RunningFirmware } from "../host-sim/engines/engine";
import type { FlashPartition, HttpHandler, Ports, Sha256 } from "../modules/ports";
import type { SimChip } from "../host-sim/chip/chip";
import { SECTOR_SIZE, type SimFlash } from "../host-sim/chip/flash";

export interface PortBucket {
  calls: number;
  bytes: number;
  ms: number;
}

export interface PortProfile {
  flashWrite: PortBucket;
  flashRead: PortBucket;
  flashErase: PortBucket;
  sha256: PortBucket;
  httpRead: PortBucket;
  storeSet: PortBucket;
  /** performance.now() when the image GET was issued (first one), and when restart() was called. */
  imageRequestAt?: number;
  restartAt?: number;
  /** Real-time marks of the update boot: image request/status/complete, each agent state reported, restart. */
  marks: Array<[string, number]>;
  /** Writes and erases the firmware made per partition label it opened ("otadata", "nextota"...). */
  byLabel: Record<string, { writes: number; erases: number }>;
  /** store.set calls per "domain/key" ("xsota/journal", "xsota.outbox/..."). */
  setsByDomain: Record<string, number>;
}

const bucket = (): PortBucket => ({ calls: 0, bytes: 0, ms: 0 });
export const newProfile = (): PortProfile => ({
  flashWrite: bucket(), flashRead: bucket(), flashErase: bucket(), sha256: bucket(), httpRead: bucket(), storeSet: bucket(), marks: [], byLabel: {}, setsByDomain: {},
});

/** Sum of the real ms the ports spent (Node side). */
export function portMs(p: PortProfile): number {
  return p.flashWrite.ms + p.flashRead.ms + p.flashErase.ms + p.sha256.ms + p.httpRead.ms + p.storeSet.ms;
}

function timed<T>(b: PortBucket, bytes: number, fn: () => T): T {
  const t = performance.now();
  try {
    return fn();
  } finally {
    b.ms += performance.now() - t;
    b.calls++;
    b.bytes += bytes;
  }
}

function wrapPartition(p: FlashPartition, prof: PortProfile, label: string): FlashPartition {
  const n = (prof.byLabel[label] ??= { writes: 0, erases: 0 });
  return {
    byteLength: p.byteLength,
    blockSize: p.blockSize,
    read: (o, t) => timed(prof.flashRead, t.byteLength, () => p.read(o, t)),
    write: (o, d) => {
      timed(prof.flashWrite, d.byteLength, () => p.write(o, d));
      n.writes++;
    },
    eraseBlock: (b) => {
      timed(prof.flashErase, 0, () => p.eraseBlock(b));
      n.erases++;
    },
  };
}

function wrapHash(h: Sha256, prof: PortProfile): Sha256 {
  return {
    write: (d) => timed(prof.sha256, d.byteLength, () => h.write(d)),
    close: () => h.close(),
    digest: () => h.digest(),
    reset: () => h.reset(),
  };
}

/**
 * Ports with every data-path call counted and timed into `prof`; with `detail` false only the
 * marks (image request, status, complete, states, restart) are taken and flash, store and
 * hashing are the engine's own, so the run measured is not slowed by the measuring.
 */
export function probePorts(ports: Ports, prof: PortProfile, isImage: (url: string) => boolean, detail = true): Ports {
  const { flash, store, http, crypto, system } = ports;
  const data: Partial<Ports> = detail ? {
    flash: { open: (label) => wrapPartition(flash.open(label), prof, label), slots: () => flash.slots() },
    store: {
      get: (d, k) => store.get(d, k),
      set: (d, k, v) => {
        prof.setsByDomain[`${d}/${k}`] = (prof.setsByDomain[`${d}/${k}`] ?? 0) + 1;
        timed(prof.storeSet, typeof v === "string" ? v.length : v instanceof ArrayBuffer ? v.byteLength : 4, () => store.set(d, k, v));
      },
      delete: (d, k) => store.delete(d, k),
      keys: (d) => store.keys(d),
    },
    crypto: {
      sha256: () => wrapHash(crypto.sha256(), prof),
      verifyEcdsaP256: (k, d, s) => crypto.verifyEcdsaP256(k, d, s),
      verifyRsaPkcs1Sha256: (m, e, d, s) => crypto.verifyRsaPkcs1Sha256(m, e, d, s),
    },
  } : {};
  return {
    ...ports,
    ...data,
    http: {
      request(options, handler) {
        const image = isImage(options.url);
        const mark = (what: string) => { if (image) prof.marks.push([what, performance.now()]); };
        if (prof.imageRequestAt === undefined && image) prof.imageRequestAt = performance.now();
        mark("request");
        const h: HttpHandler = {
          onStatus: (s) => { mark("status"); handler.onStatus(s); },
          onHeader: (n, v) => handler.onHeader(n, v),
          onHeadersComplete: () => handler.onHeadersComplete(),
          onData: detail ? (available, read) => handler.onData(available, (t) => {
            const t0 = performance.now();
            const n = read(t);
            prof.httpRead.ms += performance.now() - t0;
            prof.httpRead.calls++;
            prof.httpRead.bytes += n;
            return n;
          }) : (available, read) => handler.onData(available, read),
          onComplete: () => { mark("complete"); handler.onComplete(); },
          onError: (c, d) => handler.onError(c, d),
        };
        return http.request(options, h);
      },
    },
    system: {
      ...system,
      restart: (reason) => {
        prof.restartAt ??= performance.now();
        prof.marks.push(["restart", performance.now()]);
        system.restart(reason);
      },
      resetReason: () => system.resetReason(),
      deviceId: () => system.deviceId(),
      hardwareRevision: () => system.hardwareRevision(),
      chipId: () => system.chipId(),
      freeHeap: () => system.freeHeap(),
      log: (l) => {
        const m = /^@event .*?"state":"([a-z-]+)"/.exec(l);
        if (m && m[1] !== "downloading") prof.marks.push([m[1]!, performance.now()]);
        system.log(l);
      },
    },
  };
}

/** `engine` with its boots' ports probed (`detail`: see probePorts); profiles[i] belongs to boot i. */
export function probeEngine(engine: Engine, isImage: (url: string) => boolean = (u) => u.endsWith(".bin"), detail = true): Engine & { profiles: PortProfile[] } {
  const profiles: PortProfile[] = [];
  return {
    name: engine.name,
    profiles,
    boot(ports: Ports, boot: FirmwareBoot): Promise<RunningFirmware> {
      const prof = newProfile();
      profiles.push(prof);
      return engine.boot(probePorts(ports, prof, isImage, detail), boot);
    },
    close: () => engine.close(),
  };
}

export interface PartitionWear {
  erases: number;
  writes: number;
  bytesWritten: number;
  /** Sectors erased more than once. */
  sectorsErasedTwice: number;
  /** Distinct sectors erased. */
  sectorsErased: number;
  /** Bytes written into a sector beyond its size since its last erase (0 = no rewrite). */
  rewriteBytes: number;
}

/** Books every write/erase of one SimFlash to its partition (until stop()). */
export class FlashRecorder {
  private perSector = new Map<number, { erases: number; bytesSinceErase: number }>();
  private byPart = new Map<string, PartitionWear>();
  private restore: () => void;

  constructor(private readonly chip: SimChip) {
    const flash: SimFlash = chip.flash;
    const write = flash.write.bind(flash);
    const erase = flash.erase.bind(flash);
    flash.write = (offset: number, data: Uint8Array) => {
      write(offset, data);
      this.onWrite(offset, data.byteLength);
    };
    flash.erase = (sector: number) => {
      erase(sector);
      this.onErase(sector);
    };
    this.restore = () => {
      delete (flash as { write?: unknown }).write;
      delete (flash as { erase?: unknown }).erase;
    };
  }

  private part(offset: number): PartitionWear {
    const e = this.chip.table.entries.find((x) => offset >= x.offset && offset < x.offset + x.size);
    const name = e ? e.name : "other";
    let w = this.byPart.get(name);
    if (!w) this.byPart.set(name, (w = { erases: 0, writes: 0, bytesWritten: 0, sectorsErasedTwice: 0, sectorsErased: 0, rewriteBytes: 0 }));
    return w;
  }

  private sector(i: number) {
    let s = this.perSector.get(i);
    if (!s) this.perSector.set(i, (s = { erases: 0, bytesSinceErase: 0 }));
    return s;
  }

  private onWrite(offset: number, length: number): void {
    const w = this.part(offset);
    w.writes++;
    w.bytesWritten += length;
    // Split across sectors; count bytes landing in a sector beyond its size since its erase.
    let o = offset;
    const end = offset + length;
    while (o < end) {
      const si = Math.floor(o / SECTOR_SIZE);
      const n = Math.min(end, (si + 1) * SECTOR_SIZE) - o;
      const s = this.sector(si);
      s.bytesSinceErase += n;
      if (s.bytesSinceErase > SECTOR_SIZE) w.rewriteBytes += Math.min(n, s.bytesSinceErase - SECTOR_SIZE);
      o += n;
    }
  }

  private onErase(sector: number): void {
    const w = this.part(sector * SECTOR_SIZE);
    w.erases++;
    const s = this.sector(sector);
    s.erases++;
    s.bytesSinceErase = 0;
    if (s.erases === 1) w.sectorsErased++;
    if (s.erases === 2) w.sectorsErasedTwice++;
  }

  /** Wear per partition name so far. */
  wear(name: string): PartitionWear {
    return { ...(this.byPart.get(name) ?? { erases: 0, writes: 0, bytesWritten: 0, sectorsErasedTwice: 0, sectorsErased: 0, rewriteBytes: 0 }) };
  }

  stop(): void {
    this.restore();
  }
}
