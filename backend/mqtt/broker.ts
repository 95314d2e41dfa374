/*
 * A real MQTT broker on loopback: embedded aedes (default) or a mosquitto process.
 *
 * Both keep sessions and queued QoS 1 messages across stop()/start() the way a broker with
 * persistence does (aedes: the same in-memory persistence object is handed to the new
 * instance; mosquitto: `persistence true` in a temp dir, written on SIGTERM). That is what lets
 * the controller's persistent session (clean=false) receive events devices publish while it
 * is still reconnecting after a broker restart.
 *
 * mosquitto runs with a generated config in a fresh temp dir (config, persistence db, log),
 * listening on 127.0.0.1 only; the dir is removed by close().
 *
 * aedes' memory persistence (aedes-persistence 11) answers every SUBSCRIBE by testing the
 * pattern against every retained message: each device that connects and subscribes pays for
 * the whole fleet's retained version/state/online, so a fleet's connects cost O(n^2) (the
 * 5,000-device bench spent most of its CPU there). indexRetained keeps a topic -> packet map
 * beside it and answers wildcard-free patterns (a device's own subscriptions) from it; patterns
 * with + or # still go to aedes' own scan.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Aedes } from "aedes";
import aedesPersistence, { type AedesPersistence, type Packet } from "aedes-persistence";
import { OtaError } from "../../modules/errors";

export type BrokerKind = "aedes" | "mosquitto";

export interface BrokerOptions {
  kind?: BrokerKind;
  /** 0 or absent: a free port. */
  port?: number;
  /** Path of the mosquitto binary (default: found on PATH or /usr/sbin/mosquitto). */
  mosquittoPath?: string;
  /**
   * aedes only: decides each CONNECT (client id, user name, password as UTF-8); false refuses it
   * with return code 5 (not authorized). Absent: every client is accepted.
   */
  authenticate?: (clientId: string, username: string | undefined, password: string | undefined) => boolean;
  /**
   * mosquitto only: no anonymous client; each one's user name and password checked against
   * `passwordFile` (mosquitto_passwd's format, e.g. from mosquittoPasswordLine) and what it may
   * publish and read against `aclFile` (the one shipped: deploy/mosquitto/acl).
   */
  mosquittoAuth?: { passwordFile: string; aclFile: string };
  /** mosquitto only: a second listener, MQTT over TLS on `tlsPort`, with this certificate file (the leaf alone, or leaf + CA) and key. */
  mosquittoTls?: { certFile: string; keyFile: string };
}

export interface Broker {
  readonly kind: BrokerKind;
  readonly host: string;
  readonly port: number;
  /** mqtt://127.0.0.1:PORT */
  readonly url: string;
  readonly running: boolean;
  /** The broker's own process while it runs (mosquitto); undefined for the embedded one. */
  readonly pid: number | undefined;
  /** mosquitto with mosquittoTls: the port of its TLS listener. */
  readonly tlsPort?: number;
  /** Stop accepting and drop every connection (sessions survive for the next start()). */
  stop(): Promise<void>;
  /** Start again on the same port. */
  start(): Promise<void>;
  /** Stop for good and remove temp files. Safe twice. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

/** The mosquitto binary, or undefined when it is not installed. */
export function findMosquitto(): string | undefined {
  for (const p of ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"]) if (existsSync(p)) return p;
  const r = spawnSync("sh", ["-c", "command -v mosquitto"], { encoding: "utf8" });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/**
 * One line of a mosquitto password file, as `mosquitto_passwd` (2.0) writes it: user:$7$ITER$SALT$HASH,
 * PBKDF2-HMAC-SHA512 over the password with a 12-byte random salt, base64. The user name may not
 * hold ':' (the separator).
 */
export function mosquittoPasswordLine(user: string, password: string, iterations = 101): string {
  if (!user || user.includes(":") || /[\r\n]/.test(user)) throw new OtaError("USAGE", `bad MQTT user name '${user}'`);
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 64, "sha512");
  return `${user}:$7$${iterations}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Ask the OS for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Start a broker. Throws PORT_BUSY, MQTT_CONNECT (mosquitto missing or not starting). */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const kind = options.kind ?? "aedes";
  const port = options.port || (await freePort());
  if (options.authenticate && kind !== "aedes") throw new OtaError("MQTT_CONNECT", "authenticate is for the embedded aedes broker");
  if ((options.mosquittoAuth || options.mosquittoTls) && kind !== "mosquitto") throw new OtaError("MQTT_CONNECT", "mosquittoAuth and mosquittoTls are for mosquitto");
  const b = kind === "aedes" ? new AedesBroker(port, options.authenticate)
    : new MosquittoBroker(port, options.mosquittoPath, options.mosquittoAuth, options.mosquittoTls && { ...options.mosquittoTls, port: await freePort() });
  await b.start();
  return b;
}

/** aedes' memory persistence with retained messages also indexed by topic (see the header). */
export function indexRetained(p: AedesPersistence): AedesPersistence {
  const byTopic = new Map<string, Packet>();
  const exact = (pattern: string) => !/[+#]/.test(pattern);
  const storeRetained = p.storeRetained.bind(p);
  const stream = p.createRetainedStream.bind(p);
  const combi = p.createRetainedStreamCombi.bind(p);
  p.storeRetained = (packet, cb) => {
    // As the memory persistence stores it: a copy, and an empty payload clears the topic.
    const { topic, payload } = packet as Packet & { topic: string; payload: Uint8Array | string };
    if (payload.length === 0) byTopic.delete(topic);
    else byTopic.set(topic, Object.assign({}, packet));
    // aedes calls it without a callback and awaits the promise the callback layer returns.
    return storeRetained(packet, cb);
  };
  const lookup = (patterns: string[]) => patterns.flatMap((t) => byTopic.get(t) ?? []);
  p.createRetainedStream = (pattern) => (exact(pattern) ? Readable.from(lookup([pattern])) : stream(pattern));
  p.createRetainedStreamCombi = (patterns) => (patterns.every(exact) ? Readable.from(lookup(patterns)) : combi(patterns));
  return p;
}

class AedesBroker implements Broker {
  readonly kind = "aedes" as const;
  readonly host = HOST;
  readonly pid = undefined;
  running = false;
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  private persistence: AedesPersistence | undefined;

  constructor(readonly port: number, private readonly authenticate?: BrokerOptions["authenticate"]) {}

  get url(): string {
    return `mqtt://${HOST}:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const opts: Record<string, unknown> = { heartbeatInterval: 3600_000, concurrency: 1000, queueLimit: 1000, drainTimeout: 30_000 };
    this.persistence ??= indexRetained(aedesPersistence());
    opts.persistence = this.persistence;
    const auth = this.authenticate;
    if (auth) {
      opts.authenticate = (client: { id: string }, username: string | undefined, password: Uint8Array | undefined, done: (e: Error | null, ok: boolean) => void) => {
        const ok = auth(client.id, username, password === undefined ? undefined : Buffer.from(password).toString("utf8"));
        if (ok) done(null, true);
        else done(Object.assign(new Error("not authorized"), { returnCode: 5 }), false);
      };
    }
    const aedes = await Aedes.createBroker(opts);
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) =>
        reject(e.code === "EADDRINUSE" ? new OtaError("PORT_BUSY", `${HOST}:${this.port}`) : e),
      );
      server.listen({ port: this.port, host: HOST, backlog: 4096 }, () => resolve()); // a fleet connects at once
    });
    this.aedes = aedes;
    this.server = server;
    this.running = true;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const server = this.server!;
    const aedes = this.aedes!;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => aedes.close(() => r()));
    await closed;
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

class MosquittoBroker implements Broker {
  readonly kind = "mosquitto" as const;
  readonly host = HOST;
  running = false;
  private dir: string | undefined;
  private child: ChildProcess | undefined;
  private readonly bin: string;

  constructor(readonly port: number, bin?: string, private readonly auth?: BrokerOptions["mosquittoAuth"], private readonly tls?: { certFile: string; keyFile: string; port: number }) {
    const found = bin ?? findMosquitto();
    if (!found) throw new OtaError("MQTT_CONNECT", "mosquitto is not installed (apt-get install -y mosquitto)");
    this.bin = found;
  }

  get url(): string {
    return `mqtt://${HOST}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  get tlsPort(): number | undefined {
    return this.tls?.port;
  }

  private config(dir: string): string {
    return [
      `listener ${this.port} ${HOST}`,
      // Started as root, mosquitto drops to user "mosquitto", which cannot write our temp dir.
      `user ${userInfo().username}`,
      ...(this.auth
        ? ["allow_anonymous false", `password_file ${this.auth.passwordFile}`, `acl_file ${this.auth.aclFile}`]
        : ["allow_anonymous true"]),
      "persistence true",
      `persistence_location ${dir}/`,
      "persistence_file broker.db",
      "autosave_interval 1800",
      "max_queued_messages 200000",
      "max_inflight_messages 0",
      "set_tcp_nodelay true",
      "max_keepalive 65535",
      `log_dest file ${dir}/mosquitto.log`,
      "log_type error",
      "log_type warning",
      ...(this.tls ? [`listener ${this.tls.port} ${HOST}`, `certfile ${this.tls.certFile}`, `keyfile ${this.tls.keyFile}`] : []),
      "",
    ].join("\n");
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (!this.dir) this.dir = mkdtempSync(join(tmpdir(), "xsota-mosquitto-"));
    const conf = join(this.dir, "mosquitto.conf");
    writeFileSync(conf, this.config(this.dir));
    const child = spawn(this.bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    let exited = false;
    child.on("exit", () => (exited = true));
    this.child = child;
    const deadline = performance.now() + 10_000;
    for (;;) {
      if (exited) {
        const log = existsSync(join(this.dir, "mosquitto.log")) ? readFileSync(join(this.dir, "mosquitto.log"), "utf8") : "";
        const text = `${stderr}${log}`.trim().split("\n").slice(-3).join(" | ");
        if (/address already in use/i.test(text)) throw new OtaError("PORT_BUSY", `${HOST}:${this.port}`);
        throw new OtaError("MQTT_CONNECT", `mosquitto exited: ${text}`);
      }
      if (await canConnect(this.port)) break;
      if (performance.now() > deadline) {
        child.kill("SIGKILL");
        throw new OtaError("MQTT_CONNECT", "mosquitto did not start listening within 10 s");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.running = true;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) {
      this.running = false;
      return;
    }
    this.running = false;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await gone;
    clearTimeout(t);
    this.child = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: HOST, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
