/// <reference path="./types/moddable.d.ts" preserve="true" />
/*
 * MqttPort on the classic Moddable "mqtt" Client (modules/network/mqtt/mqtt.js): MQTT 3.1.1, clean
 * session, subscriptions at QoS 0, no retransmission. Its publish() writes QoS 1 with packet id
 * `client.packet` but never reports the PUBACK, so a subclass watches the received bytes
 * (src/mqtt-frames.ts) and calls onPublished: the outbox can then drop what the broker has.
 * Semantics as backend/mqtt/client.ts: close() sends DISCONNECT and calls no onClose;
 * onClose reasons start with an OtaError code, and arrive asynchronously, also when the client
 * cannot even be constructed (mqtt.js throws "parameter host is required"; securesocket throws
 * for TLS setup, e.g. "date validation failed" before SNTP): thrown from connect() on the first
 * boot, that would leave the new image unconfirmed; thrown in a reconnect timer, it would reach
 * fxAbort and esp_restart, and the unconfirmed image would roll back.
 * TLS: the pinned CA, or every certificate in its validity period of the connection's `ca` (PEM)
 * in its place; the chain held to them by src/tls-chain.ts. None valid: MQTT_CONNECT.
 */
import Client from "mqtt";
import Timer from "timer";
import type { MqttClient, MqttConnectOptions, MqttHandler, MqttPort } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { PubackScanner } from "./mqtt-frames";
import { CheckedSecureSocket, trustAnchors } from "./tls-chain";

export class WatchedClient extends Client {
  scanner: PubackScanner | undefined;
  /** Called once when the scanner refuses the stream (a packet over the bound, a malformed length); nothing after it reaches mqtt.js. */
  onRefused: ((reason: string) => void) | undefined;
  #refused = false;
  /**
   * mqtt.js increments `packet` before each publish/subscribe and writes its low 16 bits, so the
   * 65,536th would go out as id 0 (invalid in MQTT, and 0 means "QoS 0, no ack" to the port):
   * skip from 65,535 back to 1.
   */
  #skipZero(): void {
    if ((this.packet & 0xffff) === 0xffff) this.packet = 0;
  }
  override publish(topic: string, data: string | ArrayBuffer, flags?: { quality?: number; retain?: boolean }): void {
    this.#skipZero();
    super.publish(topic, data, flags);
  }
  override subscribe(topic: string): void {
    this.#skipZero();
    super.subscribe(topic);
  }
  override received(buffer: ArrayBuffer): void {
    if (this.#refused) return;
    try {
      this.scanner?.scan(new Uint8Array(buffer));
    } catch (e) {
      this.scanner = undefined;
      if (this.onRefused) {
        // before mqtt.js sees the bytes: it would allocate the claimed length
        this.#refused = true;
        this.onRefused((e as Error).message);
        return;
      }
      // without a refusal handler (the app's own client): mqtt.js fails the connection on the same bad bytes
    }
    super.received(buffer);
  }
}

export interface EspMqttOptions {
  /** DER of the CA to trust when a connection asks for `secure` and names no `ca` of its own. */
  ca?: ArrayBuffer;
}

export class EspMqtt implements MqttPort {
  readonly #ca: ArrayBuffer | undefined;
  constructor(options: EspMqttOptions = {}) {
    this.#ca = options.ca;
  }

  connect(options: MqttConnectOptions, handler: MqttHandler): MqttClient {
    let ready = false, dead = false;
    let client: WatchedClient;
    try {
      let anchors: ArrayBuffer[] = [];
      if (options.secure) {
        anchors = options.ca !== undefined ? trustAnchors(options.ca) : this.#ca ? [this.#ca] : [];
        if (anchors.length === 0) throw new OtaError("MQTT_CONNECT", options.ca !== undefined ? "no trust anchor of the connection in its validity period (expired, not yet valid or not a certificate)" : "secure MQTT needs a pinned CA");
      }
      client = new WatchedClient({
        host: options.host,
        port: options.port,
        id: options.id,
        user: options.user,
        password: options.password,
        will: options.will && { topic: options.will.topic, message: options.will.payload, retain: options.will.retain ?? false, quality: options.will.qos ?? 0 },
        timeout: options.keepalive,
        ...(options.secure ? { Socket: CheckedSecureSocket, secure: { certificate: anchors[0], anchors, protocolVersion: 0x303, serverName: options.host } } : {}),
      });
    } catch (e) {
      const reason = `MQTT_CONNECT: ${e instanceof OtaError ? e.detail : String(e)}`;
      Timer.set(() => {
        if (dead) return;
        dead = true;
        handler.onClose(reason);
      });
      const closed = (what: string) => () => {
        throw new OtaError("MQTT_CLOSED", what);
      };
      return { publish: closed("publish"), subscribe: closed("subscribe"), close: () => void (dead = true) };
    }
    client.scanner = new PubackScanner((id) => {
      if (!dead) handler.onPublished?.(id);
    }, options.maxPacketBytes);
    client.onRefused = (reason) => {
      if (dead) return;
      dead = true;
      client.close();
      handler.onClose(`MQTT_PROTOCOL: ${reason}`);
    };
    client.onReady = () => {
      ready = true;
      if (!dead) handler.onReady();
    };
    client.onMessage = (topic, payload) => {
      if (!dead) handler.onMessage(topic, new Uint8Array(payload));
    };
    client.onClose = () => {
      if (dead) return;
      dead = true;
      handler.onClose(ready ? "MQTT_CLOSED: connection lost" : "MQTT_CONNECT: no CONNACK (refused, unreachable or TLS failure)");
    };
    return {
      publish(topic, payload, flags = {}) {
        if (dead || !ready) throw new OtaError("MQTT_CLOSED", `publish to ${topic}`);
        const qos = flags.qos ?? 0;
        const data = typeof payload === "string" ? payload : (payload.slice().buffer as ArrayBuffer);
        client.publish(topic, data, { quality: qos, retain: flags.retain ?? false });
        return qos === 1 ? client.packet & 0xffff : 0; // 1..65535 (see #skipZero)
      },
      subscribe(topic) {
        if (dead || !ready) throw new OtaError("MQTT_CLOSED", `subscribe to ${topic}`);
        client.subscribe(topic);
      },
      close() {
        if (dead) return;
        dead = true;
        client.close();
      },
    };
  }
}
