/*
 * The one module this program's manifest preloads of the agent: xsl runs it at link time, so
 * every module it imports (the whole agent through host-sim/firmware, and the src/ bindings
 * main.ts uses) is loaded then and its functions, classes and tables live in flash (ROM), as
 * src/main's imports do on the devkit (manifest.json preloads "src/main"). Listing the modules
 * themselves instead would be worse: mcconfig's preload wildcards match only JavaScript files,
 * and xsl strips a listed module's bytecode, so each closure it creates at run time copies its
 * code into RAM (about 10 KB more during a download, measured), where a module that is loaded
 * through an import keeps its bytecode in flash and closures refer to it in place.
 * The SDK's Linux preference module read its file when its class was made, which xsl cannot do;
 * this program's own (./nvs/preference.ts) reads it at each call, so src/store is here too.
 */
import "../host-sim/firmware";
import "../src/clock";
import "../src/crypto";
import "../src/http";
import "../src/mqtt";
import "../src/store";
import "./flash";
import "./system";
import "./bench";
import "./counted";
