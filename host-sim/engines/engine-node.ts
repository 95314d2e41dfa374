/*
 * The Node engine: runs host-sim/engines/firmware.ts (and so modules/) directly in this process, behind
 * a gate. After stop() (power off, restart, reset) the firmware's pending timers never fire,
 * its HTTP callbacks are dropped, and any port call throws: a boot that has ended cannot touch
 * flash or NVS again, as on the chip.
 */
import type { Engine, FirmwareBoot, RunningFirmware } from "./engine";
import type { ClockPort, HttpHandler, MqttClient, Ports, TimerId } from "../../modules/ports";
import { bootFirmware } from "./firmware";

export class FirmwareStopped extends Error {
  constructor() {
    super("firmware stopped (this boot has ended)");
    this.name = "FirmwareStopped";
  }
}

export interface Gate {
  ports: Ports;
  readonly dead: boolean;
  kill(): void;
}

/** Wrap `ports` so that kill() makes them inert. Timer callbacks that throw are reported to `onCrash`. */
export function gatePorts(ports: Ports, onCrash: (e: unknown) => void): Gate {
  let dead = false;
  const timers = new Set<TimerId>();
  const requests = new Set<{ close(): void }>();
  const clients = new Set<MqttClient>();
  const live = () => {
    if (dead) throw new FirmwareStopped();
  };
  const guard = (fn: () => void) => {
    if (dead) return;
    try {
      fn();
    } catch (e) {
      if (!dead) onCrash(e);
    }
  };
  const clock: ClockPort = {
    now: () => ports.clock.now(),
    wallTime: () => ports.clock.wallTime(),
    setTimeout: (cb, ms) => {
      live();
      const id = ports.clock.setTimeout(() => {
        timers.delete(id);
        guard(cb);
      }, ms);
      timers.add(id);
      return id;
    },
    clearTimeout: (id) => {
      timers.delete(id);
      ports.clock.clearTimeout(id);
    },
  };
  const gated: Ports = {
    flash: {
      open: (label) => {
        live();
        const p = ports.flash.open(label);
        return {
          byteLength: p.byteLength,
          blockSize: p.blockSize,
          read: (o, t) => { live(); p.read(o, t); },
          write: (o, d) => { live(); p.write(o, d); },
          eraseBlock: (b) => { live(); p.eraseBlock(b); },
        };
      },
      slots: () => { live(); return ports.flash.slots(); },
    },
    store: {
      get: (d, k) => { live(); return ports.store.get(d, k); },
      set: (d, k, v) => { live(); ports.store.set(d, k, v); },
      delete: (d, k) => { live(); ports.store.delete(d, k); },
      keys: (d) => { live(); return ports.store.keys(d); },
    },
    http: {
      request: (options, handler) => {
        live();
        const wrap: HttpHandler = {
          onStatus: (s) => guard(() => handler.onStatus(s)),
          onHeader: (n, v) => guard(() => handler.onHeader(n, v)),
          onHeadersComplete: () => guard(() => handler.onHeadersComplete()),
          onData: (a, read) => guard(() => handler.onData(a, read)),
          onComplete: () => { requests.delete(req); guard(() => handler.onComplete()); },
          onError: (c, d) => { requests.delete(req); guard(() => handler.onError(c, d)); },
        };
        const req = ports.http.request(options, wrap);
        requests.add(req);
        return { close: () => { requests.delete(req); req.close(); }, pull: () => { live(); req.pull?.(); } };
      },
    },
    crypto: ports.crypto,
    clock,
    system: {
      restart: (reason) => { live(); ports.system.restart(reason); },
      resetReason: () => ports.system.resetReason(),
      deviceId: () => ports.system.deviceId(),
      hardwareRevision: () => ports.system.hardwareRevision(),
      chipId: () => ports.system.chipId(),
      freeHeap: () => ports.system.freeHeap(),
      log: (line) => { if (!dead) ports.system.log(line); },
    },
  };
  if (ports.boot) {
    const boot = ports.boot;
    gated.boot = {
      runningState: () => { live(); return boot.runningState(); },
      setBootSlot: (slot) => { live(); boot.setBootSlot(slot); },
      rollbackPossible: () => { live(); return boot.rollbackPossible(); },
      markValid: () => { live(); boot.markValid(); },
      markInvalid: () => { live(); boot.markInvalid(); },
    };
  }
  if (ports.mqtt) {
    const mqtt = ports.mqtt;
    gated.mqtt = {
      connect: (options, handler) => {
        live();
        const client = mqtt.connect(options, {
          onReady: () => guard(() => handler.onReady()),
          onMessage: (t, p) => guard(() => handler.onMessage(t, p)),
          onClose: (r) => { clients.delete(client); guard(() => handler.onClose(r)); },
          ...(handler.onPublished ? { onPublished: (id: number) => guard(() => handler.onPublished!(id)) } : {}),
        });
        clients.add(client);
        return {
          publish: (t, p, o) => { live(); return client.publish(t, p, o); },
          subscribe: (t) => { live(); client.subscribe(t); },
          close: () => { clients.delete(client); client.close(); },
        };
      },
    };
  }
  return {
    ports: gated,
    get dead() {
      return dead;
    },
    kill() {
      if (dead) return;
      dead = true;
      for (const id of timers) ports.clock.clearTimeout(id);
      timers.clear();
      for (const r of [...requests]) r.close();
      requests.clear();
      for (const c of [...clients]) {
        try {
          c.close();
        } catch {
          // already gone
        }
      }
      clients.clear();
    },
  };
}

/**
 * A panic (the firmware threw out of a callback or out of its main) is reported as a log line
 * "@panic <message>"; SimDevice resets the chip on it. The XS engine does the same.
 */
export const PANIC_PREFIX = "@panic ";

export function createNodeEngine(): Engine {
  return nodeEngineFor(bootFirmware);
}

/** The Node engine's semantics (gate, panic) for any firmware main with bootFirmware's shape. */
export function nodeEngineFor(bootFirmware: (ports: Ports, boot: FirmwareBoot) => { close(): void }): Engine {
  return {
    name: "node",
    async boot(ports: Ports, boot: FirmwareBoot): Promise<RunningFirmware> {
      const panic = (e: unknown) => ports.system.log(PANIC_PREFIX + (e instanceof Error ? e.message : String(e)));
      const gate = gatePorts(ports, panic);
      let handle: { close(): void } | undefined;
      try {
        handle = bootFirmware(gate.ports, boot);
      } catch (e) {
        if (!gate.dead) panic(e);
      }
      return {
        async stop() {
          if (gate.dead) return;
          gate.kill();
          try {
            handle?.close();
          } catch {
            // the ports are dead; nothing to release
          }
        },
      };
    },
    async close() {},
  };
}
