/*
 * The root module this program's manifest preloads of the agent: xsl runs it at link time, so
 * every module it imports (the whole agent through host-sim/engines/firmware-core and the features' specifiers, the src/ bindings main.ts
 * uses and the harness) is loaded then and its functions, classes and tables live in flash (ROM),
 * as src/main's imports do on the devkit (manifest.json preloads "src/main").
 * The manifests also list, by name, the modules whose functions make no closure that lives at run
 * time (moddable-host/manifest.json the same ones as manifest.json, but those Linux replaces; test/
 * device/esp32-build holds them together): for a listed module xsl drops the module body's
 * bytecode, about 19 KB of the devkit's link. Not every module: a listed module's closures made at
 * run time copy their code into RAM (all listed: about 2 KB more during a download, mostly src/
 * http.ts's per-request closures; measured with --census), while a module preloaded only through an
 * import keeps its script in flash and its closures refer to it in place. mcconfig's preload
 * wildcards match only JavaScript files, hence the names.
 */
import "../host-sim/engines/firmware-core";
import "xsota/feature/fleet";
import "xsota/feature/delta";
import "xsota/feature/control";
import "../src/clock";
import "../src/crypto";
import "../src/http";
import "../src/mqtt";
import "../src/store";
import "./flash";
import "./system";
import "./bench";
import "./counted";
