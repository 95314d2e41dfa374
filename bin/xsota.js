#!/usr/bin/env node
// The xsota command line: a thin launcher for host-sim/cli (TypeScript, run through tsx).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../host-sim/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
