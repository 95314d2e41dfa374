/*
 * The guide stays true: every relative link in README.md, docs/ and the folders' READMEs resolves
 * (file and heading), every npm script quoted exists, and every `xsota` command quoted is a command
 * whose `--help` runs and names each subcommand and option the quote uses.
 */
import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { join, dirname, relative } from "node:path";
import { spawn } from "node:child_process";

const root = join(import.meta.dirname, "..");
const SKIP = new Set(["node_modules", "out", ".git", "results"]);

function markdownFiles(dir: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) found.push(...markdownFiles(p));
    else if (e.name.endsWith(".md")) found.push(p);
  }
  return found;
}

/** GitHub's heading anchor: lower case, punctuation but '-' and '_' dropped, spaces to '-'. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replace(/ /g, "-");
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

/** [target, line] of every relative markdown link outside code. */
function links(file: string): [string, number][] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: [string, number][] = [];
  let fenced = false;
  lines.forEach((line, i) => {
    if (line.startsWith("```")) fenced = !fenced;
    if (fenced) return;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!/^[a-z]+:/i.test(m[1]!)) out.push([m[1]!, i + 1]);
    }
  });
  return out;
}

const guide = [join(root, "README.md"), ...markdownFiles(join(root, "docs"))];
const everyMd = markdownFiles(root);

describe("the guide's links", () => {
  it("README.md is at most about 200 lines and links every page of docs/", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    expect(readme.split("\n").length).toBeLessThanOrEqual(210);
    for (const page of readdirSync(join(root, "docs")).filter((n) => n.endsWith(".md"))) {
      expect(readme, `README.md does not link docs/${page}`).toContain(`(docs/${page}`);
    }
  });

  it("every relative link in every markdown file resolves, headings included", () => {
    const broken: string[] = [];
    for (const file of everyMd) {
      for (const [target, line] of links(file)) {
        const [path, hash] = target.split("#") as [string, string | undefined];
        const dest = path ? join(dirname(file), decodeURIComponent(path)) : file;
        const where = `${relative(root, file)}:${line} -> ${target}`;
        if (!existsSync(dest)) broken.push(`${where} (no such file)`);
        else if (hash && statSync(dest).isFile() && dest.endsWith(".md") && !anchors(dest).has(hash)) broken.push(`${where} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("the check itself sees a broken link and a broken heading", () => {
    expect(slug("On Moddable's own toolchain and runtime (`--only moddable`)")).toBe("on-moddables-own-toolchain-and-runtime---only-moddable");
    expect(anchors(join(root, "docs", "component.md")).has("board-notes")).toBe(true);
    expect(anchors(join(root, "docs", "component.md")).has("board-note")).toBe(false);
  });
});

/** `node bin/xsota.js NAME --help`: its exit status and stdout. */
function xsotaHelp(name: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "bin", "xsota.js"), name, "--help"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out }));
  });
}

interface Quote { file: string; argv: string[] }

/** Every `xsota ...`, `node bin/xsota.js ...` and `npm ...` command quoted in the guide. */
function quotedCommands(): { xsota: Quote[]; npm: Quote[] } {
  const xsota: Quote[] = [];
  const npm: Quote[] = [];
  for (const file of guide) {
    const text = readFileSync(file, "utf8");
    const code = [...text.matchAll(/```(?:sh|bash|console)?\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split("\n").map((l) => l.replace(/\s+#.*$/, "")));
    const inline = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
    for (const cmd of [...code, ...inline].flatMap((s) => s.split(/&&|;|\|(?!\|)/))) {
      const words = cmd.trim().split(/\s+/);
      const at = words.findIndex((w, i) => w === "xsota" || (w === "bin/xsota.js" && words[i - 1] === "node"));
      const name = /^[a-z][a-z-]*/.exec(words[at + 1] ?? "")?.[0];
      if (at >= 0 && name) xsota.push({ file: relative(root, file), argv: [name, ...words.slice(at + 2).filter((w) => w !== "\\")] });
      const n = words.indexOf("npm");
      if (n >= 0 && words[n + 1]) {
        const [verb, script, ...rest] = words.slice(n + 1);
        if (verb === "start") xsota.push({ file: relative(root, file), argv: ["demo", ...words.slice(n + 2).filter((w) => w !== "--")] });
        if (verb === "run" && script === "bench") xsota.push({ file: relative(root, file), argv: ["bench", ...rest.filter((w) => w !== "--")] });
        npm.push({ file: relative(root, file), argv: words.slice(n + 1) });
      }
    }
  }
  return { xsota, npm };
}

describe("the commands the guide quotes", () => {
  const { xsota, npm } = quotedCommands();

  it("finds the commands (a parser that finds none checks nothing)", () => {
    expect(xsota.length).toBeGreaterThan(40);
    expect(new Set(xsota.map((q) => q.argv[0])).size).toBeGreaterThan(12);
  });

  it("every npm script quoted exists in package.json", () => {
    const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts as Record<string, string>;
    const missing = npm.filter(({ argv: [verb, script] }) => {
      if (verb === "start" || verb === "test") return !(verb in scripts);
      if (verb === "run") return !script || !(script.replace(/[^\w:-].*$/, "") in scripts);
      return !["install", "ci", "i", "view"].includes(verb!); // npm's own commands
    }).map((q) => `${q.file}: npm ${q.argv.join(" ")}`);
    expect(missing).toEqual([]);
  });

  it("every xsota command quoted runs --help, which names its subcommand and options", async () => {
    const names = [...new Set(xsota.map((q) => q.argv[0]!))];
    const help = new Map<string, { code: number; out: string }>();
    // Two at a time, each in its own process as a user runs it (bin/xsota.js through tsx).
    for (let i = 0; i < names.length; i += 2) {
      await Promise.all(names.slice(i, i + 2).map(async (name) => help.set(name, await xsotaHelp(name))));
    }
    const wrong: string[] = [];
    for (const q of xsota) {
      const name = q.argv[0]!;
      const h = help.get(name)!;
      if (h.code !== 0) {
        wrong.push(`${q.file}: xsota ${q.argv.join(" ")} (--help exits ${h.code})`);
        continue;
      }
      const sub = q.argv[1];
      if (sub && /^[a-z][a-z-]+$/.test(sub) && !new RegExp(`\\b${sub}\\b`).test(h.out)) wrong.push(`${q.file}: xsota ${q.argv.join(" ")} (no subcommand '${sub}' in its help)`);
      for (const opt of q.argv.filter((w) => /^--[a-z][\w-]*/.test(w)).map((w) => w.replace(/[=[,)].*$/, ""))) {
        if (opt !== "--help" && !h.out.includes(opt)) wrong.push(`${q.file}: xsota ${q.argv.join(" ")} (its help has no ${opt})`);
      }
    }
    expect(wrong).toEqual([]);
  }, 240_000);

  it("the check itself refuses an unknown command and an unknown option", async () => {
    expect((await xsotaHelp("no-such-command")).code).not.toBe(0);
    const fleet = (await xsotaHelp("fleet")).out;
    expect(fleet).toContain("status");
    expect(fleet.includes("--no-such-option")).toBe(false);
  }, 120_000);
});
