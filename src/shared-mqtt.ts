/// <reference path="./types/moddable.d.ts" preserve="true" />
/*
 * The app's own MQTT connection, shared with the agent: the app connects with SharedClient (the
 * SDK's classic mqtt Client, with the PUBACK watch of src/mqtt.ts) and hands it over,
 * `new OTA({ mqtt: client })`, instead of the agent opening a second connection to the broker.
 * The app keeps using the client as before: its onReady/onMessage/onClose are its own, the
 * agent's handler is called beside them (accessors, so the app may set them before or after).
 * What the connection cannot share: its client id, credentials and will are the app's (the
 * agent's "online 0" will is not set), and the agent never closes it. When it closes, the agent's
 * reporter waits for the app to hand over a new one (`ota.useMqtt(client)`), then reconnects.
 */
import Timer from "timer";
import type { MqttClient, MqttConnectOptions, MqttHandler, MqttPort } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { PubackScanner } from "./mqtt-frames";
import { WatchedClient } from "./mqtt";

type Callbacks = { onReady?: () => void; onMessage?: (topic: string, payload: ArrayBuffer) => void; onClose?: () => void };

export class SharedClient extends WatchedClient {
  #app: Callbacks = {};
  /** The agent's handlers: the reporter's, and the self-test's broker check while it runs. */
  readonly #agent: MqttHandler[] = [];
  #ready = false;
  #closed = false;

  constructor(options: ConstructorParameters<typeof WatchedClient>[0]) {
    super(options);
    this.scanner = new PubackScanner((id) => {
      for (const h of this.#agent.slice()) h.onPublished?.(id);
    });
    // mqtt.js calls this.onReady(), this.onMessage?.(), this.onClose?.(): accessors, so both sides
    // are told and the app may set its callbacks before or after handing the client over
    const app = this.#app;
    Object.defineProperty(this, "onReady", { get: () => this.#readied, set: (fn: Callbacks["onReady"]) => void (app.onReady = fn) });
    Object.defineProperty(this, "onMessage", { get: () => this.#message, set: (fn: Callbacks["onMessage"]) => void (app.onMessage = fn) });
    Object.defineProperty(this, "onClose", { get: () => this.#closedNow, set: (fn: Callbacks["onClose"]) => void (app.onClose = fn) });
  }

  get ready(): boolean {
    return this.#ready && !this.#closed;
  }
  get closed(): boolean {
    return this.#closed;
  }

  readonly #readied = (): void => {
    this.#ready = true;
    this.#app.onReady?.();
    for (const h of this.#agent.slice()) h.onReady();
  };
  readonly #message = (topic: string, payload: ArrayBuffer): void => {
    this.#app.onMessage?.(topic, payload);
    for (const h of this.#agent.slice()) h.onMessage(topic, new Uint8Array(payload));
  };
  readonly #closedNow = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#app.onClose?.();
    for (const h of this.#agent.splice(0)) h.onClose("MQTT_CLOSED: the app's connection closed");
  };

  attach(handler: MqttHandler): void {
    if (this.#agent.indexOf(handler) < 0) this.#agent.push(handler);
  }
  detach(handler: MqttHandler): void {
    const at = this.#agent.indexOf(handler);
    if (at >= 0) this.#agent.splice(at, 1);
  }
}

/** MqttPort over the app's SharedClient: connect() attaches to it instead of dialling the broker. */
export class SharedMqtt implements MqttPort {
  #client: SharedClient;
  constructor(client: SharedClient) {
    if (!(client instanceof SharedClient)) throw new TypeError("mqtt: expected a SharedClient (xsota/src/shared-mqtt)");
    this.#client = client;
  }

  /** A new connection of the app's (after its previous one closed). */
  use(client: SharedClient): void {
    if (!(client instanceof SharedClient)) throw new TypeError("mqtt: expected a SharedClient (xsota/src/shared-mqtt)");
    this.#client = client;
  }

  connect(_options: MqttConnectOptions, handler: MqttHandler): MqttClient {
    const client = this.#client;
    let attached = true;
    if (client.closed) Timer.set(() => attached && handler.onClose("MQTT_CLOSED: the app's connection is closed"));
    else {
      client.attach(handler);
      // ready already: tell the handler after connect() has returned, as a fresh connection would
      if (client.ready) Timer.set(() => attached && handler.onReady());
    }
    return {
      publish(topic, payload, flags = {}) {
        if (!attached || !client.ready) throw new OtaError("MQTT_CLOSED", `publish to ${topic}`);
        const qos = flags.qos ?? 0;
        const data = typeof payload === "string" ? payload : (payload.slice().buffer as ArrayBuffer);
        client.publish(topic, data, { quality: qos, retain: flags.retain ?? false });
        return qos === 1 ? client.packet & 0xffff : 0;
      },
      subscribe(topic) {
        if (!attached || !client.ready) throw new OtaError("MQTT_CLOSED", `subscribe to ${topic}`);
        client.subscribe(topic);
      },
      close() {
        // the agent lets go; the connection is the app's and stays open
        if (!attached) return;
        attached = false;
        client.detach(handler);
      },
    };
  }
}
