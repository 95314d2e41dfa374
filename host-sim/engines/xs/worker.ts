/*
 * A minimal driver for @agoric/xsnap's `xsnap-worker` binary: the real XS engine, built from C
 * at `npm install`. It speaks the worker's own protocol (netstrings on fd 3 to the worker and
 * fd 4 from it; `e` evaluate, `?` command, `w` write snapshot, `q` quit; replies `.meter\1reply`,
 * `!error`, and `?request` for the worker's synchronous issueCommand, answered with `/reply`).
 *
 * Why not the package's `xsnap()` wrapper: it needs SES (`harden`, `assert`) in the Node process,
 * i.e. `import "@endo/init"`, whose lockdown freezes the host's intrinsics and strips unknown
 * ones (Reflect.defineMetadata, which @peculiar/x509 needs), breaking the rest of the simulator.
 * Lockdown belongs inside the worker (see runner.ts), not in Node.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";

/** What the worker's own meter reports after each crank (xsnap-worker.c fxWriteOkay). */
export interface MeterUsage {
  /** Metering index: XS's count of executed operations in the crank (deterministic). */
  compute: number;
  /** Bytes the machine has obtained from the OS for chunks and slots so far (its footprint). */
  allocate: number;
  /** Slots in use (live plus not yet collected). */
  currentHeapCount: number;
}

export interface CrankResult {
  reply: Uint8Array;
  meter: MeterUsage;
}

export interface WorkerOptions {
  name?: string;
  /** Load this snapshot file instead of starting a bare machine. */
  snapshot?: string;
  /** Per-crank compute limit; a crank that exceeds it kills the worker (E_TOO_MUCH_COMPUTATION). */
  meteringLimit?: number;
  /** Synchronous answer to the worker's issueCommand. */
  handleCommand?: (request: Uint8Array) => Uint8Array;
  /** Lines the worker prints (print()). Default: discarded. */
  onPrint?: (line: string) => void;
}

export const EXIT_MESSAGES: Record<number, string> = {
  1: "bad argument usage",
  2: "I/O error",
  11: "not enough memory",
  12: "stack overflow",
  15: "unhandled exception",
  16: "property (key) name space exhausted",
  17: "too much computation",
};

export function workerBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve("@agoric/xsnap/package.json"));
  return join(pkg, "xsnap-native/xsnap/build/bin/lin/release/xsnap-worker");
}

export class XsWorkerError extends Error {
  constructor(message: string, readonly exitCode?: number | null) {
    super(message);
    this.name = "XsWorkerError";
  }
}

interface Pending {
  resolve(r: CrankResult): void;
  reject(e: Error): void;
}

const OK = 0x2e; // '.'
const ERR = 0x21; // '!'
const QUERY = 0x3f; // '?'
const EMPTY = new Uint8Array(0);

export class XsWorker {
  readonly name: string;
  private proc: ChildProcess;
  private toWorker: Writable;
  private inbox: Buffer = Buffer.alloc(0);
  private queue: Array<{ frame: Buffer; pending: Pending }> = [];
  private current: Pending | undefined;
  private exited: Error | undefined;
  /** Synchronous answer to the worker's issueCommand (may be set after construction). */
  handleCommand: (request: Uint8Array) => Uint8Array;
  /** Lines the worker prints. */
  onPrint: ((line: string) => void) | undefined;
  readonly exit: Promise<number | null>;

  constructor(options: WorkerOptions = {}) {
    this.name = options.name ?? "xsota";
    this.handleCommand = options.handleCommand ?? ((r) => r);
    const args = [this.name];
    if (options.snapshot) args.push("-r", options.snapshot);
    if (options.meteringLimit) args.push("-l", String(options.meteringLimit));
    this.proc = spawn(workerBinary(), args, { stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] });
    const stdio = this.proc.stdio as unknown as [null, Readable, Readable, Writable, Readable];
    this.toWorker = stdio[3];
    this.toWorker.on("error", () => {});
    stdio[4].on("data", (chunk: Buffer) => this.receive(chunk));
    this.onPrint = options.onPrint;
    let partial = "";
    stdio[1].setEncoding("utf8");
    stdio[1].on("data", (text: string) => {
      partial += text;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        this.onPrint?.(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    let stderr = "";
    stdio[2].setEncoding("utf8");
    stdio[2].on("data", (text: string) => {
      if (stderr.length < 4000) stderr += text;
    });
    this.exit = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        const why = signal ? `signal ${signal}` : `exit ${code} (${EXIT_MESSAGES[code ?? -1] ?? "unknown"})`;
        this.exited = new XsWorkerError(`${this.name}: XS worker ended: ${why}${stderr ? `: ${stderr.trim()}` : ""}`, code);
        const all = [...(this.current ? [this.current] : []), ...this.queue.map((q) => q.pending)];
        this.current = undefined;
        this.queue = [];
        for (const p of all) p.reject(this.exited);
        resolve(code);
      });
    });
  }

  /**
   * Whether this worker keeps Node's event loop alive (default true). A spare worker waiting
   * for the next boot does not: a CLI that forgets engine.close() still exits.
   */
  keepAlive(on: boolean): void {
    const stdio = this.proc.stdio as unknown as Array<{ ref?(): void; unref?(): void } | null>;
    for (const s of [this.proc, ...stdio]) {
      if (!s) continue;
      if (on) s.ref?.();
      else s.unref?.();
    }
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Evaluate a script in the worker's global scope; promise jobs run before it returns. */
  evaluate(code: string): Promise<CrankResult> {
    return this.send(Buffer.concat([Buffer.from("e"), Buffer.from(code, "utf8")]));
  }

  /** Deliver `message` to the worker's globalThis.handleCommand(ArrayBuffer); its ArrayBuffer result is the reply. */
  command(message: Uint8Array): Promise<CrankResult> {
    return this.send(Buffer.concat([Buffer.from("?"), message]));
  }

  /** Write a snapshot of the machine to `path` (a file). Resolves with its size. */
  async snapshot(path: string): Promise<number> {
    const r = await this.send(Buffer.from(`w${path}`, "utf8"));
    return Number(Buffer.from(r.reply).toString("utf8"));
  }

  /**
   * Kill the process (a power cut); pending cranks reject. The process is ref'd first: an
   * unref'd spare's exit event would not keep Node's event loop alive, so an awaited
   * terminate() of the last handle left the caller's promise unsettled (a CLI exited 13).
   */
  async terminate(): Promise<void> {
    if (!this.exited) {
      this.keepAlive(true);
      this.proc.kill("SIGKILL");
    }
    await this.exit;
  }

  /** Ask the worker to quit cleanly after pending work. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.keepAlive(true);
      this.toWorker.end(netstring(Buffer.from("q")));
      const t = setTimeout(() => this.proc.kill("SIGKILL"), 2000);
      await this.exit;
      clearTimeout(t);
    }
  }

  private send(frame: Buffer): Promise<CrankResult> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<CrankResult>((resolve, reject) => {
      this.queue.push({ frame, pending: { resolve, reject } });
      this.pump();
    });
  }

  private pump(): void {
    if (this.current || this.exited) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next.pending;
    this.toWorker.write(netstring(next.frame));
  }

  private receive(chunk: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, chunk]) : chunk;
    for (;;) {
      const colon = this.inbox.indexOf(0x3a);
      if (colon < 0) return;
      const len = Number(this.inbox.subarray(0, colon).toString("latin1"));
      const end = colon + 1 + len;
      if (this.inbox.length < end + 1) return;
      const message = this.inbox.subarray(colon + 1, end);
      this.inbox = this.inbox.subarray(end + 1);
      this.dispatch(message);
    }
  }

  private dispatch(message: Buffer): void {
    const kind = message[0];
    if (kind === QUERY) {
      let reply: Uint8Array;
      try {
        reply = this.handleCommand(new Uint8Array(message.buffer, message.byteOffset + 1, message.length - 1));
      } catch (e) {
        // The bridge encodes port errors itself; anything escaping here is a bridge bug.
        reply = EMPTY;
        queueMicrotask(() => {
          throw e;
        });
      }
      const head = Buffer.from(`${reply.length + 1}:/`, "latin1");
      this.toWorker.write(Buffer.concat([head, reply, Buffer.from(",")]));
      return;
    }
    const pending = this.current;
    this.current = undefined;
    if (!pending) return;
    if (kind === OK) {
      const sep = message.indexOf(1, 1);
      let meter: MeterUsage = { compute: 0, allocate: 0, currentHeapCount: 0 };
      if (sep >= 0) meter = JSON.parse(message.subarray(1, sep).toString("utf8")) as MeterUsage;
      const body = message.subarray(sep < 0 ? 1 : sep + 1);
      pending.resolve({ reply: new Uint8Array(body), meter });
    } else if (kind === ERR) {
      pending.reject(new XsWorkerError(`${this.name}: uncaught exception in XS: ${message.subarray(1).toString("utf8")}`));
    } else {
      pending.reject(new XsWorkerError(`${this.name}: protocol error`));
    }
    this.pump();
  }
}

function netstring(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length}:`, "latin1"), payload, Buffer.from(",")]);
}
