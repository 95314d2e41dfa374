#!/usr/bin/env node
// The xsota command line: a thin launcher for cli/ (TypeScript, run through tsx).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
const code = await main(process.argv.slice(2));
// A finished command ends the process even when a library left a handle open (a broker that
// failed to bind, a half-closed socket): long-running commands return only once they are
// done. Flush what was written to pipes first.
const flushed = (stream) => new Promise((resolve) => stream.write("", resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
