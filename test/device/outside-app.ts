/*
 * A user's app outside the repo, written at test time: its own name (the folder), a JavaScript
 * main that imports "xsota", and a module named "agent" of its own (a generic name the component
 * must not take); its manifest includes the component and every feature by absolute path. The
 * same app is built for esp32 and its boards (test/device/esp32-build.test.ts) and for Moddable's
 * runtime for Linux (test/moddable/app.test.ts). Its self-test fails on its version 1.2.0 (on
 * Linux both images run the same program, so the version stands for code that differs).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "../../bench/moddable-esp32";
import { featureManifests } from "../../bench/moddable-size";

/** `component`: the component's root (the repo, or the JavaScript tree `xsota component` writes). */
export function writeOutsideApp(dir: string, name = "blinky", component = REPO): string {
  const app = join(dir, name);
  mkdirSync(app, { recursive: true });
  const example = JSON.parse(readFileSync(join(REPO, "examples", "minimal", "manifest.json"), "utf8")) as { config: unknown };
  writeFileSync(join(app, "manifest.json"), JSON.stringify({
    include: ["$(MODDABLE)/examples/manifest_base.json", "$(MODDABLE)/examples/manifest_net.json", join(component, "manifest.json"), ...featureManifests().map((f) => join(component, relative(REPO, f.manifest)))],
    modules: { "*": ["./main", "./agent"] },
    config: example.config,
  }, null, "\t"));
  writeFileSync(join(app, "agent.js"), "export default function agent() { return 'mine'; }\n");
  writeFileSync(join(app, "main.js"), [
    'import OTA from "xsota";',
    'import agent from "agent";',
    'trace(`${agent()}\\n`);',
    "let readings = 0;",
    "const ota = new OTA({",
    "  // the app's own self-test: its release 1.2.0 has a sensor bug this catches",
    '  checks: [{ name: "sensor", run: () => ota.running.version !== "1.2.0" && ++readings > 0 }],',
    "});",
    "ota.start();",
    "",
  ].join("\n"));
  return app;
}
