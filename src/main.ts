/*
 * The device application (manifest.json creation.main = "src/main"). Runs after
 * setup/network has joined Wi-Fi and set the clock by SNTP (TLS checks certificate dates);
 * until then the "setup/xsota" module (src/setup-deadline.ts) holds the self-test deadline.
 * Boot: confirm or roll back the running image, report its version; then the update loop.
 * All of it is modules/app.ts, the same code the simulator runs; this file only binds ports.
 *
 * Configuration is manifest.json's "config" (mc/config): `ota` is modules/config.ts's AppConfig,
 * `otaCa` the base64 DER certificate pinned for the update host (and broker), `version` the
 * app version that sdkconfig/sdkconfig.defaults also writes into esp_app_desc_t.
 */
import config from "mc/config";
import { start } from "../modules/app";
import { parseConfig } from "../modules/config";
import { fromBase64 } from "../modules/bytes";
import { OtaError, codeOf } from "../modules/errors";
import { createDevicePorts } from "./ports";

export default function main(): void {
  try {
    const appConfig = parseConfig(config.ota);
    if (typeof config.otaCa !== "string" || config.otaCa === "") throw new OtaError("CONFIG_INVALID", "otaCa: the pinned CA (base64 DER) is required");
    const ca = fromBase64(config.otaCa).slice().buffer as ArrayBuffer;
    const ports = createDevicePorts({
      ca,
      ...(config.otaMqttCa ? { mqttCa: fromBase64(String(config.otaMqttCa)).slice().buffer as ArrayBuffer } : {}),
      mqtt: appConfig.mqtt !== undefined,
      ...(appConfig.hardware ? { hardware: appConfig.hardware } : {}),
    });
    const app = start(ports, appConfig);
    // main runs once setup/network has an IP: the network is up (a no-op unless diagnostics.waitForNetwork;
    // an app that brings up its own network calls networkUp() itself, from its own main).
    app.networkUp();
    const running = app.agent.running;
    trace(`xsota: running ${running.project} ${running.version} (secure_version ${running.secureVersion}) in ota_${running.slot}\n`);
    if (config.version !== undefined && running.version !== config.version)
      trace(`xsota: warning: manifest config.version ${config.version} differs from esp_app_desc_t ${running.version}\n`);
    app.booted.then(
      (outcome) => trace(`xsota: boot ${JSON.stringify(outcome)}\n`),
      (e: unknown) => trace(`xsota: boot failed: ${codeOf(e)} ${String(e)}\n`),
    );
  } catch (e) {
    // A configuration or running-image error: nothing to confirm against, keep the image as it is.
    trace(`xsota: not started: ${codeOf(e)} ${String(e)}\n`);
  }
}
