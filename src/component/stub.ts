/*
 * "xsota" on a platform other than esp32 (manifest.json "..."): the same API, so an app that
 * includes the component still builds for Moddable's simulator; start() says why it does nothing.
 * The agent itself runs on the host through host-sim/ (Node, xsnap) and moddable-host/ (Linux).
 */
export default class OTA {
  constructor(_options: Record<string, unknown> = {}) {}
  start(): void {
    trace("xsota: over-the-air updates run on the ESP32 only; not started on this platform\n");
  }
  stop(): void {}
  check(_force = false): Promise<{ state: "idle" }> {
    return Promise.resolve({ state: "idle" });
  }
  get state(): "idle" {
    return "idle";
  }
  get running(): undefined {
    return undefined;
  }
}
