/*
 * The lines between the sides of the wire, checked on every import of every TypeScript file
 * (MAY_IMPORT below): the device side (modules/, src/, features/, examples/) never imports the
 * host side; modules/ is the ground floor; the real back-end (backend/) never imports the
 * simulator (host-sim/); nothing but tests imports test/; and no file imports itself through
 * others, type-only imports included.
 */
import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { join, dirname, relative, resolve } from "node:path";

const root = join(import.meta.dirname, "..");
const SKIP = new Set(["node_modules", "out", ".git"]);

function sources(dir: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) found.push(...sources(p));
    else if (/\.m?ts$/.test(e.name) && !e.name.endsWith(".d.ts")) found.push(p);
  }
  return found;
}

type Graph = Map<string, string[]>;

/** Each file's relative imports (static, dynamic and `export ... from`, type-only too), as repo paths. */
function importGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of sources(root)) {
    const text = readFileSync(file, "utf8");
    const specs = [
      ...[...text.matchAll(/^\s*(?:import|export)\s[^"'`;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1]!),
      ...[...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!),
    ];
    const deps: string[] = [];
    for (const spec of specs.filter((s) => s.startsWith("."))) {
      const base = resolve(dirname(file), spec);
      const hit = [base, `${base}.ts`, base.replace(/\.js$/, ".ts"), join(base, "index.ts")].find((c) => existsSync(c) && statSync(c).isFile());
      if (hit) deps.push(relative(root, hit));
    }
    graph.set(relative(root, file), deps);
  }
  return graph;
}

/** Strongly connected components of more than one file (Tarjan). */
export function cycles(graph: Graph): string[][] {
  let n = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const top = (path: string) => path.split("/")[0]!;

/**
 * What each top-level folder may import (besides itself). The device side imports only the device
 * side, modules/ nothing but itself; the back-end (backend/) only modules/, never the simulator;
 * the simulator (host-sim/, moddable-host/) the device side and the back-end, not the CLI; the CLI
 * and the benchmarks everything but the tests.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  modules: [],
  src: ["modules"],
  features: ["modules", "src"],
  examples: ["modules", "src", "features"],
  backend: ["modules"],
  "host-sim": ["modules", "src", "features", "backend", "moddable-host"],
  "moddable-host": ["modules", "src", "features", "host-sim"],
  cli: ["modules", "src", "features", "backend", "host-sim", "moddable-host", "bench"],
  bench: ["modules", "src", "features", "backend", "host-sim", "moddable-host", "cli"],
  bin: ["cli"],
  test: ["modules", "src", "features", "examples", "backend", "host-sim", "moddable-host", "cli", "bench", "bin"],
};

/** Imports that cross the line, as "from -> to". */
export function crossings(graph: Graph): string[] {
  const bad: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) {
      const [a, b] = [top(from), top(to)];
      if (a !== b && !(MAY_IMPORT[a] ?? []).includes(b)) bad.push(`${from} -> ${to}`);
    }
  }
  return bad;
}

describe("layering", () => {
  const graph = importGraph();

  it("reads the whole tree (a reader that finds nothing checks nothing)", () => {
    expect(graph.size).toBeGreaterThan(300);
    expect(graph.get("modules/agent.ts")?.length).toBeGreaterThan(5);
  });

  it("no import crosses a line: modules/ imports only modules/, the device side never the host side, the back-end never the simulator", () => {
    expect(crossings(graph)).toEqual([]);
  });

  it("nothing imports in a circle, type-only imports included", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("the checks see a crossing and a circle", () => {
    const bad: Graph = new Map([
      ["modules/a.ts", ["host-sim/b.ts"]],
      ["src/c.ts", ["bench/d.ts"]],
      ["host-sim/b.ts", ["host-sim/e.ts"]],
      ["host-sim/e.ts", ["host-sim/b.ts"]],
      ["host-sim/f.ts", ["test/helper.ts"]],
      ["backend/g.ts", ["host-sim/b.ts"]],
      ["cli/h.ts", ["backend/g.ts", "host-sim/b.ts"]],
    ]);
    expect(crossings(bad)).toEqual(["modules/a.ts -> host-sim/b.ts", "src/c.ts -> bench/d.ts", "host-sim/f.ts -> test/helper.ts", "backend/g.ts -> host-sim/b.ts"]);
    expect(cycles(bad)).toEqual([["host-sim/b.ts", "host-sim/e.ts"]]);
  });
});
