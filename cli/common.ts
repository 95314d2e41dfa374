/*
 * What every xsota subcommand shares: argument parsing with --help, error reporting with
 * codes and hints, exit statuses, --json output.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { existsSync } from "node:fs";
import { OtaError, type ErrorCode } from "../modules/errors";
import { errorHint } from "./error-hints";

export interface Command {
  name: string;
  summary: string;
  /** Full help text: usage line, options, examples. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** Exit statuses: 0 success, 1 the operation failed (verification, update), 2 usage, 3 environment (file, port, host). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, ENVIRONMENT: 3 } as const;

const ENVIRONMENT_CODES: ReadonlySet<ErrorCode> = new Set(["FILE_NOT_FOUND", "PORT_BUSY", "HTTP_CONNECT", "MQTT_CONNECT", "DB_CONNECT"]);

export function exitStatusOf(code: ErrorCode): number {
  if (code === "USAGE") return EXIT.USAGE;
  if (ENVIRONMENT_CODES.has(code)) return EXIT.ENVIRONMENT;
  return EXIT.FAILED;
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parse argv strictly; unknown options are a USAGE error. `help` is always accepted. */
export function parse<O extends Options>(argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
  } catch (e) {
    throw new OtaError("USAGE", (e as Error).message);
  }
}

export function requireOption<T>(value: T | undefined, name: string): T {
  if (value === undefined || value === "") throw new OtaError("USAGE", `missing --${name}`);
  return value;
}

export function requireFile(path: string | undefined, what: string): string {
  if (!path) throw new OtaError("USAGE", `missing ${what}`);
  if (!existsSync(path)) throw new OtaError("FILE_NOT_FOUND", `${what}: ${path}`);
  return path;
}

/** Sizes like 1.2M, 1536K, 0x1000, 4096. */
export function parseSize(text: string): number {
  const m = /^(0x[0-9a-f]+|\d+(?:\.\d+)?)([km]?)b?$/i.exec(text.trim());
  if (!m) throw new OtaError("USAGE", `not a size: ${text}`);
  const n = m[1]!.toLowerCase().startsWith("0x") ? parseInt(m[1]!, 16) : parseFloat(m[1]!);
  const unit = m[2]!.toLowerCase();
  return Math.round(n * (unit === "k" ? 1024 : unit === "m" ? 1024 * 1024 : 1));
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

const useColor = () => process.stderr.isTTY && !process.env.NO_COLOR;
export const color = {
  red: (s: string) => (useColor() ? `\x1b[31m${s}\x1b[0m` : s),
  green: (s: string) => (useColor() ? `\x1b[32m${s}\x1b[0m` : s),
  yellow: (s: string) => (useColor() ? `\x1b[33m${s}\x1b[0m` : s),
  dim: (s: string) => (useColor() ? `\x1b[2m${s}\x1b[0m` : s),
  bold: (s: string) => (useColor() ? `\x1b[1m${s}\x1b[0m` : s),
};

/** Report a failure on stderr (code, message, hint) and return the exit status. */
export function reportError(e: unknown, command?: string): number {
  if (e instanceof OtaError) {
    process.stderr.write(`${color.red("error")} ${e.message}\n`);
    process.stderr.write(`${color.dim("hint:")} ${errorHint(e.code)}${e.code === "USAGE" && command ? ` (xsota ${command} --help)` : ""}\n`);
    return exitStatusOf(e.code);
  }
  const err = e as NodeJS.ErrnoException;
  if (err && err.code === "ENOENT") {
    process.stderr.write(`${color.red("error")} FILE_NOT_FOUND: ${err.path ?? err.message}\n`);
    return EXIT.ENVIRONMENT;
  }
  if (err && err.code === "EADDRINUSE") {
    process.stderr.write(`${color.red("error")} PORT_BUSY: ${err.message}\n${color.dim("hint:")} pick another --port\n`);
    return EXIT.ENVIRONMENT;
  }
  if (err && err.code === "ERR_INVALID_URL") {
    const input = (err as { input?: string }).input;
    process.stderr.write(`${color.red("error")} USAGE: not a URL${input !== undefined ? `: '${input}'` : ""}\n`);
    process.stderr.write(`${color.dim("hint:")} ${errorHint("USAGE")}${command ? ` (xsota ${command} --help)` : ""}\n`);
    return EXIT.USAGE;
  }
  // A bug: the message and where to look; the stack only on request (bad usage never lands here).
  const debug = !!process.env.XSOTA_DEBUG;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(e);
  process.stderr.write(`${color.red("error")} INTERNAL: ${debug && err?.stack ? err.stack : text}\n`);
  process.stderr.write(`${color.dim("hint:")} ${errorHint("INTERNAL")}${debug ? "" : " (XSOTA_DEBUG=1 shows the stack)"}\n`);
  return EXIT.FAILED;
}

/** A one-line progress bar on stderr (only when it is a terminal, else milestone lines). */
export class Progress {
  private lastPct = -1;
  constructor(private label: string, private total: number) {}
  update(done: number): void {
    const pct = this.total > 0 ? Math.floor((done * 100) / this.total) : 100;
    if (pct === this.lastPct) return;
    if (process.stderr.isTTY) {
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      process.stderr.write(`\r${this.label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${String(pct).padStart(3)}% ${done}/${this.total}`);
    } else if (pct % 25 === 0 && pct !== this.lastPct) {
      process.stderr.write(`${this.label} ${pct}% (${done}/${this.total})\n`);
    }
    this.lastPct = pct;
  }
  done(): void {
    if (process.stderr.isTTY) process.stderr.write("\n");
  }
}
