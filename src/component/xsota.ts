/*
 * xsota: the public API of the component (manifest.json maps it to the specifier "xsota").
 *
 *   import OTA from "xsota";
 *   const ota = new OTA({ checks: [{ name: "sensor", run: () => sensor.ready }] });
 *   ota.start();
 *
 * start() confirms or rolls back the running image (the self-test after an update), reports its
 * version, then checks for updates every checkIntervalMs. Configuration comes from the app's
 * manifest (config.xsota, over the component's defaults), the values provisioned in NVS for this
 * device (domain "xsota.dev", see OTA.provision) and options.config, in rising precedence
 * (modules/provision.ts layerConfig: objects merge key by key, arrays replace, null deletes).
 *
 * The optional features come through their specifiers ("xsota/feature/fleet", ".../delta", ".../control"): null unless the app
 * includes the feature's manifest (features/<name>/manifest.json; modules/features.ts).
 *
 * Imports are written "xsota/...", not "./x": XS resolves a relative import from the module's
 * name ("xsota", at the root), TypeScript from this file in src/; mcconfig maps both.
 */
import config from "mc/config";
import { start, type App } from "xsota/modules/app";
import { OtaError } from "xsota/modules/errors";
import { antiRollbackOfBuild } from "xsota/modules/config";
import { fromBase64 } from "xsota/modules/bytes";
import { configure, provision, readProvisioned, withDeviceId, type Provisioned, type ProvisionValues } from "xsota/modules/provision";
import { PreferenceStore } from "xsota/src/store";
import { buildAntiRollback, createDevicePorts } from "xsota/platform";
import fleet from "xsota/feature/fleet";
import delta from "xsota/feature/delta";
import control from "xsota/feature/control";
import { SharedClient, SharedMqtt } from "xsota/src/shared-mqtt";
import type { AgentState, AuditEvent } from "xsota/modules/events";
import type { DiagnosticCheck } from "xsota/modules/diagnostics";
import type { BootOutcome, CheckOutcome } from "xsota/modules/agent";
import type { ErrorCode } from "xsota/modules/errors";

export { SharedClient };
export type { AgentState as OTAState, AuditEvent as OTAEvent, DiagnosticCheck as SelfTest, BootOutcome, CheckOutcome, ErrorCode, Provisioned, ProvisionValues };

/** What the running image is (its esp_app_desc_t), for the app's UI. */
export interface RunningImage {
  version: string;
  project?: string;
  secureVersion: number;
  slot: number;
}

export interface OTAOptions {
  /**
   * Configuration that wins over the manifest's config.xsota and the NVS-provisioned values:
   * any key of config.xsota (product, manifestUrl, trustedKeys, ca, mqtt...). Arrays replace.
   */
  config?: Record<string, unknown>;
  /**
   * Application self-tests run after an update, beside the built-in ones (heap, network, update
   * host, broker). A check with `network: true` waits for the network like the built-in network checks.
   */
  checks?: DiagnosticCheck[];
  /** true: `checks` replace the built-in ones (config diagnostics.builtin false). */
  replaceChecks?: boolean;
  /**
   * "setup" (default): the network is up when start() is called (Moddable's setup/network runs
   * main once Wi-Fi has an IP). "app": the app brings its network up itself (Ethernet,
   * provisioning, a slow access point) and calls ota.networkUp(); the network checks of a
   * self-test and the first update check wait for it, bounded by diagnostics.networkDeadlineMs.
   */
  network?: "setup" | "app";
  /**
   * Whether a restart is acceptable now. After an update is installed the agent asks every
   * reboot.pollMs and restarts once it says yes, or at reboot.deadlineMs regardless (REBOOT_DEADLINE).
   */
  rebootWhen?: () => boolean;
  /** Every state transition (already stored in the outbox when called). */
  onEvent?: (event: AuditEvent) => void;
  /** Bytes of the image written so far; per chunk, keep it cheap. */
  onProgress?: (written: number, total: number) => void;
  /**
   * false: no MQTT reporter and no broker check, even when config.xsota.mqtt names a broker.
   * A SharedClient (exported here; the SDK's mqtt Client with the PUBACK watch): the app's own
   * connection, which the agent reports over instead of opening its own (src/shared-mqtt.ts).
   */
  mqtt?: false | SharedClient;
  /** Delay of the first update check after boot (ms, default 0). */
  firstCheckMs?: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function der(b64: unknown, name: string): ArrayBuffer {
  if (typeof b64 !== "string" || b64 === "") throw new OtaError("CONFIG_INVALID", `${name}: the pinned CA certificate (base64 DER) is required`);
  return fromBase64(b64).slice().buffer as ArrayBuffer;
}

export default class OTA {
  readonly #options: OTAOptions;
  #app: App | undefined;
  #shared: SharedMqtt | undefined;

  constructor(options: OTAOptions = {}) {
    if (typeof options !== "object" || options === null) throw new TypeError("options must be an object");
    this.#options = options;
  }

  /**
   * Start the agent: the boot action (self-test or report), then the update loop. Throws
   * CONFIG_INVALID (a missing or bad setting, named), KEY_* (a trusted key), IMAGE_* (the running
   * image has no readable app descriptor), FLASH_NO_PARTITION (no OTA slots or otadata), and
   * CONTROL_STATE when already started.
   */
  start(): void {
    if (this.#app) throw new OtaError("CONTROL_STATE", "xsota is already started");
    const o = this.#options;
    const store = new PreferenceStore();
    const defaults = isRecord(config.xsota) ? (config.xsota as Record<string, unknown>) : {};
    // The CA(s) are the device port's, not the agent's configuration: taken out of each layer.
    const { ca: caDefault, mqttCa: mqttCaDefault, ...base } = defaults;
    const { ca: caOver, mqttCa: mqttCaOver, ...over } = o.config ?? {};
    const code: Record<string, unknown> = { ...over };
    if (o.mqtt === false) code.mqtt = null;
    const shared = o.mqtt instanceof SharedClient ? o.mqtt : undefined;
    // the app's connection: its broker, id and credentials are the app's; the layers' mqtt block keeps its other settings
    if (shared) code.mqtt = { ...(isRecord(base.mqtt) ? base.mqtt : {}), ...(isRecord(over.mqtt) ? over.mqtt : {}), host: "(the app's connection)", port: 1 };
    if (o.replaceChecks) code.diagnostics = { ...(isRecord(over.diagnostics) ? over.diagnostics : {}), builtin: false };
    // ESP-IDF's anti-rollback is the build's (sdkconfig): the agent's floor follows it (modules/config.ts).
    code.antiRollback = antiRollbackOfBuild(over.antiRollback ?? base.antiRollback, buildAntiRollback());
    const { config: agentConfig, provisioned } = configure(store, base, code);
    const ca = caOver ?? caDefault, mqttCa = mqttCaOver ?? mqttCaDefault;
    const ports = createDevicePorts({
      ca: der(ca, "config.xsota.ca"),
      ...(mqttCa !== undefined ? { mqttCa: der(mqttCa, "config.xsota.mqttCa") } : {}),
      mqtt: agentConfig.mqtt !== undefined && fleet !== null && !shared,
      ...(agentConfig.hardware !== undefined ? { hardware: agentConfig.hardware } : {}),
    });
    ports.system = withDeviceId(ports.system, provisioned.deviceId);
    if (shared) ports.mqtt = this.#shared = new SharedMqtt(shared);
    const observer = { onEvent: o.onEvent, onProgress: o.onProgress };
    const app = start(ports, agentConfig, {
      observer,
      network: o.network === "app" ? "app" : "ready",
      ...(o.checks ? { checks: o.checks } : {}),
      ...(o.rebootWhen ? { rebootWhen: o.rebootWhen } : {}),
      ...(o.firstCheckMs !== undefined ? { firstCheckMs: o.firstCheckMs } : {}),
      features: { fleet, delta, control },
    });
    this.#app = app;
    // main runs once setup/network has an IP: the network is up (an "app" network says so itself)
    if (o.network !== "app") app.networkUp();
  }

  /** The app's new MQTT connection, after the one it handed over (options.mqtt) closed; the reporter reconnects over it. */
  useMqtt(client: SharedClient): void {
    if (!this.#shared) throw new OtaError("CONTROL_STATE", "xsota was not started with an app's MQTT client (options.mqtt)");
    this.#shared.use(client);
  }

  /** The app's network is up (with options.network "app"; harmless otherwise). */
  networkUp(): void {
    if (this.#app) this.#app.networkUp();
  }

  /**
   * This device's own values, kept in NVS (domain "xsota.dev") so one signed image serves a whole
   * fleet: deviceId, groups, region, username/password/clientId for the broker, host/port. Every
   * value is checked before any is written (CONFIG_INVALID naming it); null deletes one. They take
   * effect at the next start(): code's options.config > provisioned > the manifest's config.xsota.
   */
  static provision(values: ProvisionValues): Provisioned {
    return provision(new PreferenceStore(), values);
  }

  /** The values provisioned on this device. */
  static get provisioned(): Provisioned {
    return readProvisioned(new PreferenceStore());
  }

  /** Stop the update loop and the reporter; safe to call twice. A download in flight is abandoned (it resumes at the next start). */
  stop(): void {
    const app = this.#app;
    this.#app = undefined;
    if (app) app.close();
  }

  /** Check for an update now. `force` (a critical patch) overrides the maintenance window, the rollout percentage and the attempt cap. */
  check(force = false): Promise<CheckOutcome> {
    if (!this.#app) return Promise.reject(new OtaError("CONTROL_STATE", "xsota is not started"));
    return this.#app.check(force ? { force } : {});
  }

  /** Settles once the boot action (self-test, report) is done. */
  get booted(): Promise<BootOutcome> {
    if (!this.#app) return Promise.reject(new OtaError("CONTROL_STATE", "xsota is not started"));
    return this.#app.booted;
  }

  /** The agent's state ("idle" before start). */
  get state(): AgentState {
    return this.#app ? this.#app.agent.state : "idle";
  }

  /** The running image (undefined before start). */
  get running(): RunningImage | undefined {
    if (!this.#app) return undefined;
    const r = this.#app.agent.running;
    const out: RunningImage = { version: r.version, secureVersion: r.secureVersion, slot: r.slot };
    if (r.project !== undefined) out.project = r.project;
    return out;
  }
}
