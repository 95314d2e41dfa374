/*
 * The simulator's MqttPort binding: MQTT 3.1.1 over real TCP, packets encoded and parsed by
 * mqtt-packet. Shaped like Moddable's classic "mqtt" Client: connect with a will, publish
 * QoS 0/1 (+retain), subscribe, message callback, onClose once. Like Moddable's client it
 * does not retransmit QoS 1 publishes: PUBACKs are reported through onPublished and the
 * caller (modules/reporter.ts) resends after a reconnect.
 *
 * Virtual time: while a CONNECT, SUBSCRIBE or QoS 1 PUBLISH awaits its ack the VirtualClock
 * is held, so a simulation never jumps hours ahead while a broker round trip is in flight.
 * Keep-alive pings run on real time (the broker measures real time), unref'd.
 *
 * onClose reasons start with an OtaError code: "MQTT_CONNECT: ...", "MQTT_CLOSED: ...",
 * "MQTT_PROTOCOL: ...".
 */
import { createConnection, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import * as mqtt from "mqtt-packet";
import type { MqttClient, MqttConnectOptions, MqttHandler, MqttPort } from "../../modules/ports";
import type { VirtualClock } from "../clock";

export interface HostMqttConnectOptions extends MqttConnectOptions {
  /** Clean session (default true, as Moddable's client). The controller uses false. */
  clean?: boolean;
  /** QoS of subscriptions (default 0, as Moddable's client). */
  subscribeQos?: 0 | 1;
}

export interface TcpMqttPortOptions {
  /** Held while acks are outstanding. */
  clock?: VirtualClock;
  /** Real ms to wait for CONNACK (default 10 000). */
  connectTimeoutMs?: number;
  /**
   * A handler callback threw (in the simulator: a power cut inside the firmware). The
   * connection is torn down without onClose. Default: remembered in `handlerErrors`.
   */
  onHandlerError?: (e: unknown) => void;
  /**
   * PEM of the CA(s) a `secure` connection trusts when its options name none (the firmware's pinned
   * broker CA); no system roots. A connection's own `ca` (the root's anchors) replaces it.
   */
  ca?: string;
}

const enc = (s: string | Uint8Array) => (typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s.buffer, s.byteOffset, s.byteLength));

export class TcpMqttClient implements MqttClient {
  private socket: Socket;
  private parser = mqtt.parser({ protocolVersion: 4 });
  private ready = false;
  private dead = false;
  private nextId = 1;
  /** packet id -> release of the clock hold */
  private inflight = new Map<number, () => void>();
  /** SUBSCRIBE packet ids not yet acknowledged */
  readonly pendingSubs = new Set<number>();
  private connectHold: (() => void) | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly port: TcpMqttPort,
    private readonly options: HostMqttConnectOptions,
    private readonly handler: MqttHandler,
  ) {
    const clock = port.options.clock;
    this.connectHold = clock?.hold();
    const ca = options.ca ?? port.options.ca;
    if (options.secure) {
      // TLS as on the device (src/mqtt.ts): the pinned CA or the root's anchors alone, the host name checked
      this.socket = tlsConnect({ host: options.host, port: options.port, ca: ca ?? [], rejectUnauthorized: true, ...(isIP(options.host) ? {} : { servername: options.host }) });
      this.socket.on("secureConnect", () => this.sendConnect());
      if (!ca) queueMicrotask(() => this.fail("MQTT_CONNECT: secure MQTT needs a pinned CA"));
    } else {
      this.socket = createConnection({ host: options.host, port: options.port });
      this.socket.on("connect", () => this.sendConnect());
    }
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => {
      clock?.activity();
      try {
        this.parser.parse(chunk);
        // a packet whose header is in and whose body is still coming: refused as on the device
        // (src/mqtt-frames.ts), before its body is taken
        this.refuseOver((this.parser as unknown as { packet: { length: number } }).packet.length);
      } catch (e) {
        if (e instanceof HandlerError) this.handlerFailed(e.cause);
        else this.fail(`MQTT_PROTOCOL: ${(e as Error).message}`);
      }
    });
    this.parser.on("packet", (p) => this.onPacket(p));
    this.parser.on("error", (e: Error) => this.fail(`MQTT_PROTOCOL: ${e.message}`));
    this.socket.on("error", (e: NodeJS.ErrnoException) => this.fail(`${this.ready ? "MQTT_CLOSED" : "MQTT_CONNECT"}: ${e.code ?? e.message}`));
    this.socket.on("close", () => this.fail(this.ready ? "MQTT_CLOSED: connection closed by the broker" : "MQTT_CONNECT: connection closed before CONNACK"));
    this.connectTimer = setTimeout(() => this.fail("MQTT_CONNECT: no CONNACK in time"), port.options.connectTimeoutMs ?? 10_000);
    this.connectTimer.unref();
  }

  private sendConnect(): void {
    const o = this.options;
    const packet: mqtt.IConnectPacket = {
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clientId: o.id,
      clean: o.clean ?? true,
      keepalive: Math.max(1, Math.round((o.keepalive ?? 60_000) / 1000)),
    };
    if (o.user !== undefined) packet.username = o.user;
    if (o.password !== undefined) packet.password = Buffer.from(o.password, "utf8");
    if (o.will) packet.will = { topic: o.will.topic, payload: enc(o.will.payload), qos: o.will.qos ?? 0, retain: o.will.retain ?? false };
    this.write(packet);
  }

  private write(packet: mqtt.Packet): void {
    if (this.dead) return;
    this.socket.write(mqtt.generate(packet));
  }

  /** options.maxPacketBytes, as the device's binding applies it: over it, the connection ends (MQTT_PROTOCOL). */
  private refuseOver(length: number | undefined): boolean {
    const max = this.options.maxPacketBytes;
    if (max === undefined || length === undefined || length <= max) return false;
    this.fail(`MQTT_PROTOCOL: packet of ${length} bytes (at most ${max})`);
    return true;
  }

  private onPacket(p: mqtt.Packet): void {
    if (this.dead || this.refuseOver(p.length)) return;
    try {
      this.dispatch(p);
    } catch (e) {
      throw e instanceof HandlerError ? e : new HandlerError(e);
    }
  }

  private handlerFailed(e: unknown): void {
    if (this.dead) return;
    this.teardown();
    this.socket.destroy();
    this.port.handlerError(e);
  }

  private dispatch(p: mqtt.Packet): void {
    switch (p.cmd) {
      case "connack": {
        clearTimeout(this.connectTimer);
        this.connectHold?.();
        this.connectHold = undefined;
        if (p.returnCode !== 0) {
          this.fail(`MQTT_CONNECT: broker refused (return code ${p.returnCode})`);
          return;
        }
        this.ready = true;
        const keepaliveMs = this.options.keepalive ?? 60_000;
        this.pingTimer = setInterval(() => this.write({ cmd: "pingreq" }), Math.max(500, keepaliveMs / 2));
        this.pingTimer.unref();
        this.handler.onReady();
        return;
      }
      case "publish": {
        const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
        if (p.qos === 1 && p.messageId !== undefined) this.write({ cmd: "puback", messageId: p.messageId });
        this.handler.onMessage(p.topic, new Uint8Array(payload));
        return;
      }
      case "puback":
        if (p.messageId !== undefined && this.release(p.messageId)) this.handler.onPublished?.(p.messageId);
        return;
      case "suback":
        if (p.messageId !== undefined) {
          this.release(p.messageId);
          this.pendingSubs.delete(p.messageId);
          this.port.subsChanged();
        }
        return;
      case "pingresp":
        return;
      default:
        this.fail(`MQTT_PROTOCOL: unexpected ${p.cmd}`);
    }
  }

  private release(id: number): boolean {
    const r = this.inflight.get(id);
    if (!r) return false;
    this.inflight.delete(id);
    r();
    return true;
  }

  private allocId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new RangeError("65535 MQTT packets in flight");
  }

  private track(): number {
    const id = this.allocId();
    this.inflight.set(id, this.port.options.clock?.hold() ?? (() => {}));
    return id;
  }

  /** True between CONNACK and close. */
  get connected(): boolean {
    return this.ready && !this.dead;
  }

  publish(topic: string, payload: string | Uint8Array, options: { qos?: 0 | 1; retain?: boolean } = {}): number {
    if (!this.connected) throw new Error("MQTT client is not connected");
    const qos = options.qos ?? 0;
    const id = qos === 1 ? this.track() : 0;
    const packet: mqtt.IPublishPacket = { cmd: "publish", topic, payload: enc(payload), qos, dup: false, retain: options.retain ?? false };
    if (qos === 1) packet.messageId = id;
    this.write(packet);
    return id;
  }

  subscribe(topic: string): void {
    if (!this.connected) throw new Error("MQTT client is not connected");
    const id = this.track();
    this.pendingSubs.add(id);
    this.write({ cmd: "subscribe", messageId: id, subscriptions: [{ topic, qos: this.options.subscribeQos ?? 0 }] });
  }

  /** Orderly close: DISCONNECT (so the broker does not publish the will). No onClose. Safe twice. */
  close(): void {
    if (this.dead) return;
    if (this.ready) this.write({ cmd: "disconnect" });
    this.teardown();
    this.socket.end();
  }

  /** Abrupt loss (power cut, link drop): no DISCONNECT, so the will fires. `notify` calls onClose. */
  drop(notify: boolean, reason = "MQTT_CLOSED: link dropped"): void {
    if (this.dead) return;
    if (notify) this.fail(reason);
    else {
      this.teardown();
      this.socket.destroy();
    }
  }

  private fail(reason: string): void {
    if (this.dead) return;
    this.teardown();
    this.socket.destroy();
    try {
      this.handler.onClose(reason);
    } catch (e) {
      this.port.handlerError(e);
    }
  }

  private teardown(): void {
    this.dead = true;
    this.ready = false;
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    this.connectHold?.();
    this.connectHold = undefined;
    for (const r of this.inflight.values()) r();
    this.inflight.clear();
    this.pendingSubs.clear();
    this.port.forget(this);
  }
}

class HandlerError extends Error {
  constructor(readonly cause: unknown) {
    super("MQTT handler threw");
  }
}

/** One device's (or the controller's) MQTT stack. */
export class TcpMqttPort implements MqttPort {
  private live = new Set<TcpMqttClient>();
  /** Number of connect() calls (for tests and the fleet report). */
  connects = 0;

  constructor(readonly options: TcpMqttPortOptions = {}) {}

  connect(options: HostMqttConnectOptions, handler: MqttHandler): TcpMqttClient {
    this.connects++;
    const c = new TcpMqttClient(this, options, handler);
    this.live.add(c);
    return c;
  }

  /** Errors thrown by handler callbacks (when no onHandlerError is given). */
  readonly handlerErrors: unknown[] = [];

  /** @internal */
  handlerError(e: unknown): void {
    if (this.options.onHandlerError) this.options.onHandlerError(e);
    else this.handlerErrors.push(e);
  }

  /** @internal */
  forget(c: TcpMqttClient): void {
    this.live.delete(c);
    this.subsChanged();
  }

  private subWaiters: (() => void)[] = [];

  /** @internal */
  subsChanged(): void {
    if (this.subWaiters.length === 0 || [...this.live].some((c) => c.pendingSubs.size > 0)) return;
    for (const w of this.subWaiters.splice(0)) w();
  }

  /** Resolves once every SUBSCRIBE sent so far by this port's clients is acknowledged (tests). */
  subscribed(): Promise<void> {
    return new Promise((resolve) => {
      this.subWaiters.push(resolve);
      this.subsChanged();
    });
  }

  /** Power cut: every socket dies without DISCONNECT and without callbacks (the firmware is gone). */
  powerOff(): void {
    for (const c of [...this.live]) c.drop(false);
  }

  /** Flaky link: every socket dies without DISCONNECT; the firmware sees onClose and reconnects. */
  dropLinks(reason?: string): void {
    for (const c of [...this.live]) c.drop(true, reason);
  }

  get openClients(): number {
    return this.live.size;
  }
}
