/*
 * MqttPort on the classic Moddable "mqtt" Client (modules/network/mqtt/mqtt.js): MQTT 3.1.1, clean
 * session, subscriptions at QoS 0, no retransmission. Its publish() writes QoS 1 with packet id
 * `client.packet` but never reports the PUBACK, so a subclass watches the received bytes
 * (src/mqtt-frames.ts) and calls onPublished: the outbox can then drop what the broker has.
 * Semantics as host-sim/mqtt/client.ts: close() sends DISCONNECT and calls no onClose;
 * onClose reasons start with an OtaError code.
 */
import Client from "mqtt";
import SecureSocket from "securesocket";
import type { MqttClient, MqttConnectOptions, MqttHandler, MqttPort } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { PubackScanner } from "./mqtt-frames";

class WatchedClient extends Client {
  scanner: PubackScanner | undefined;
  override received(buffer: ArrayBuffer): void {
    try {
      this.scanner?.scan(new Uint8Array(buffer));
    } catch {
      this.scanner = undefined; // mqtt.js fails the connection on the same bad bytes
    }
    super.received(buffer);
  }
}

export interface EspMqttOptions {
  /** DER of the CA to trust when a connection asks for `secure`. */
  ca?: ArrayBuffer;
}

export class EspMqtt implements MqttPort {
  readonly #ca: ArrayBuffer | undefined;
  constructor(options: EspMqttOptions = {}) {
    this.#ca = options.ca;
  }

  connect(options: MqttConnectOptions, handler: MqttHandler): MqttClient {
    if (options.secure && !this.#ca) throw new OtaError("MQTT_CONNECT", "secure MQTT needs a pinned CA");
    let ready = false, dead = false;
    const client = new WatchedClient({
      host: options.host,
      port: options.port,
      id: options.id,
      user: options.user,
      password: options.password,
      will: options.will && { topic: options.will.topic, message: options.will.payload, retain: options.will.retain ?? false, quality: options.will.qos ?? 0 },
      timeout: options.keepalive,
      ...(options.secure ? { Socket: SecureSocket, secure: { certificate: this.#ca, protocolVersion: 0x303 } } : {}),
    });
    client.scanner = new PubackScanner((id) => {
      if (!dead) handler.onPublished?.(id);
    });
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
        return qos === 1 ? client.packet & 0xffff : 0;
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
