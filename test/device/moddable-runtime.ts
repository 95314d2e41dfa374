/*
 * Models of the Moddable runtime pieces the src/ bindings sit on, for running the bindings (and,
 * where it is plain JavaScript, Moddable's own module source: modules/network/mqtt/mqtt.js)
 * under Node with vi.mock. Each model keeps the behaviour the binding depends on, read in the
 * SDK 8.2.3 source named beside it; nothing else.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO } from "../../bench/moddable-esp32";

/** A file of the Moddable SDK source: $MODDABLE, else out/moddable, else ../shared/moddable. */
export function moddableFile(path: string): string | undefined {
  for (const root of [process.env.MODDABLE, join(REPO, "out", "moddable"), resolve(REPO, "..", "shared", "moddable")]) {
    if (root && existsSync(join(root, path))) return join(root, path);
  }
  return undefined;
}

/** XS's own additions to the built-ins that mqtt.js uses (xs/sources/xsString.c, xsArrayBuffer.c). */
export function installXsGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  const AB = ArrayBuffer as unknown as { fromString?: (s: string) => ArrayBuffer };
  AB.fromString ??= (s: string) => new TextEncoder().encode(s).slice().buffer;
  const S = String as unknown as { fromArrayBuffer?: (b: ArrayBuffer) => string };
  S.fromArrayBuffer ??= (b: ArrayBuffer) => new TextDecoder().decode(b);
  g.trace ??= () => {};
}

/** modules/base/timer (Timer.set/repeat/clear; set without a delay fires on the next turn). */
export const Timer = {
  set(callback: () => void, ms = 0): unknown {
    return setTimeout(callback, ms);
  },
  repeat(callback: () => void, ms: number): unknown {
    return setInterval(callback, ms);
  },
  clear(id: unknown): void {
    if (id !== undefined) clearTimeout(id as ReturnType<typeof setTimeout>);
  },
};

/** modules/base/time: ticks in ms, delta(a, b) = b - a. */
export const Time: { readonly ticks: number; delta(a: number, b?: number): number } = {
  get ticks(): number {
    return Math.floor(performance.now());
  },
  delta(a: number, b: number = Math.floor(performance.now())): number {
    return b - a;
  },
};

/**
 * modules/network/socket (lwip): the callback gets 1 connected, 2 data (count), 3 writable, < 0
 * error; read(ArrayBuffer) takes what arrived. Here the test is the peer: `deliver` feeds bytes,
 * `written` collects what the client sent.
 */
export class Socket {
  static made: Socket[] = [];
  callback: ((state: number, value?: number) => void) | undefined;
  written: Uint8Array[] = [];
  closed = false;
  #pending: Uint8Array = new Uint8Array(0);
  constructor(readonly options: { host: string; port: number; secure?: unknown }) {
    Socket.made.push(this);
  }
  write(buffer: ArrayBuffer): void {
    if (this.closed) throw new Error("socket closed");
    this.written.push(new Uint8Array(buffer.slice(0)));
  }
  read(_type: typeof ArrayBuffer): ArrayBuffer {
    const out = this.#pending.slice().buffer;
    this.#pending = new Uint8Array(0);
    return out;
  }
  close(): void {
    this.closed = true;
  }
  /** The peer: connected. */
  connect(): void {
    this.callback?.(1);
  }
  /** The peer: bytes arrive. */
  deliver(bytes: Uint8Array): void {
    this.#pending = bytes;
    this.callback?.(2, bytes.length);
  }
}

/**
 * modules/crypt/securesocket: its constructor sets up TLS at once and throws for what it cannot
 * (e.g. ssl/cert.js "date validation failed" for a pinned certificate before SNTP). `failWith`
 * makes the next one throw that.
 */
export class SecureSocket extends Socket {
  static failWith: string | undefined;
  constructor(options: { host: string; port: number; secure?: unknown }) {
    if (SecureSocket.failWith) {
      const m = SecureSocket.failWith;
      SecureSocket.failWith = undefined;
      throw new Error(m);
    }
    super(options);
  }
}

/**
 * modules/files/preference/esp32/modPreference.c over ESP-IDF NVS: integers only (a float throws
 * "float unsupported"), strings through nvs_set_str, whose 4,000-byte limit counts the NUL, so
 * 4,000 bytes of text fail ("nvs set fail"); ArrayBuffers through nvs_set_blob.
 */
export class Preference {
  static readonly data = new Map<string, string | number | boolean | ArrayBuffer>();
  static set(domain: string, key: string, value: string | number | boolean | ArrayBuffer): void {
    if (typeof value === "number" && value !== (value | 0)) throw new Error("float unsupported");
    if (typeof value === "string" && new TextEncoder().encode(value).length + 1 > 4000) throw new Error("nvs set fail");
    Preference.data.set(`${domain}/${key}`, value);
  }
  static get(domain: string, key: string): string | number | boolean | ArrayBuffer | undefined {
    return Preference.data.get(`${domain}/${key}`);
  }
  static delete(domain: string, key: string): void {
    Preference.data.delete(`${domain}/${key}`);
  }
  static keys(domain: string): string[] {
    return [...Preference.data.keys()].filter((k) => k.startsWith(`${domain}/`)).map((k) => k.slice(domain.length + 1));
  }
}
