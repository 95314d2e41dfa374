/*
 * The reference device application: an app like any user's that includes the xsota component
 * (manifest.json "include": "../../manifest.json") and starts it. It keeps the seed's partition
 * table and the project's sdkconfig (rollback, boot-time validation, watchdog), and traces what
 * the agent does. Runs after setup/network has joined Wi-Fi and set the clock by SNTP (TLS checks
 * certificate dates); until then the "setup/xsota" module holds the self-test deadline.
 *
 * Configuration: this app's manifest config.xsota (product, manifestUrl, trustedKeys, ca, mqtt...),
 * over the component's defaults; per-device values from NVS; `version` is the app version that
 * ../../sdkconfig/sdkconfig.defaults also writes into esp_app_desc_t.
 */
import config from "mc/config";
import OTA from "xsota";

export default function main(): void {
  const ota = new OTA({
    onEvent: (e) => trace(`xsota: ${e.state}${e.to ? ` ${e.to}` : ""}${e.code ? ` ${e.code}` : ""}\n`),
  });
  try {
    ota.start();
  } catch (e) {
    // A configuration or running-image error: nothing to confirm against, keep the image as it is.
    trace(`xsota: not started: ${String(e)}\n`);
    return;
  }
  const running = ota.running!;
  trace(`xsota: running ${running.project} ${running.version} (secure_version ${running.secureVersion}) in ota_${running.slot}\n`);
  if (config.version !== undefined && running.version !== config.version)
    trace(`xsota: warning: manifest config.version ${config.version} differs from esp_app_desc_t ${running.version}\n`);
  ota.booted.then(
    (outcome) => trace(`xsota: boot ${JSON.stringify(outcome)}\n`),
    (e: unknown) => trace(`xsota: boot failed: ${String(e)}\n`),
  );
}
