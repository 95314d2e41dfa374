/*
 * The demo's terminal output: the story on stdout (numbered steps, ticks, tables) and live
 * progress bars on stderr. Colour only on a terminal and without NO_COLOR; bars only when
 * stderr is a terminal (a pipe or CI log gets the milestone lines alone, no \r redraws).
 */

export interface UiOptions {
  out?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  err?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Print nothing (--json). */
  quiet?: boolean;
}

type Paint = (s: string) => string;

function painter(enabled: boolean, open: string): Paint {
  return enabled ? (s) => `\x1b[${open}m${s}\x1b[0m` : (s) => s;
}

export class Ui {
  private readonly out: NonNullable<UiOptions["out"]>;
  private readonly err: NonNullable<UiOptions["err"]>;
  readonly quiet: boolean;
  readonly bars: boolean;
  readonly c: { bold: Paint; dim: Paint; red: Paint; green: Paint; yellow: Paint; cyan: Paint };
  private barLive = false;

  constructor(o: UiOptions = {}) {
    this.out = o.out ?? process.stdout;
    this.err = o.err ?? process.stderr;
    this.quiet = o.quiet ?? false;
    const colour = !!this.out.isTTY && !process.env.NO_COLOR && process.env.TERM !== "dumb";
    this.bars = !this.quiet && !!this.err.isTTY && process.env.TERM !== "dumb";
    this.c = {
      bold: painter(colour, "1"), dim: painter(colour, "2"), red: painter(colour, "31"),
      green: painter(colour, "32"), yellow: painter(colour, "33"), cyan: painter(colour, "36"),
    };
  }

  private print(line: string): void {
    if (this.quiet) return;
    this.clearBar();
    this.out.write(line + "\n");
  }

  title(text: string): void {
    this.print(this.c.bold(text));
  }

  step(n: number, text: string): void {
    this.print("");
    this.print(`${this.c.bold(this.c.cyan(String(n).padStart(2)))}  ${this.c.bold(text)}`);
  }

  ok(text: string): void {
    this.print(`    ${this.c.green("✓")} ${text}`);
  }

  bad(text: string): void {
    this.print(`    ${this.c.red("✗")} ${text}`);
  }

  warn(text: string): void {
    this.print(`    ${this.c.yellow("!")} ${text}`);
  }

  info(text: string): void {
    this.print(`      ${text}`);
  }

  /** Rows of cells, first row is the header; numbers right-aligned. */
  table(rows: (string | number)[][], indent = 6): void {
    const cells = rows.map((r) => r.map(String));
    const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
    cells.forEach((r, ri) => {
      const line = r.map((cell, i) => (typeof rows[ri]![i] === "number" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ");
      this.print(" ".repeat(indent) + (ri === 0 ? this.c.dim(line) : line));
    });
  }

  /** Redraw one progress bar line on stderr (terminal only). */
  bar(label: string, done: number, total: number, suffix = ""): void {
    if (!this.bars) return;
    const width = 24;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    const text = `      ${label} [${"█".repeat(fill)}${"·".repeat(width - fill)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${suffix}`;
    this.err.write(`\r${text.slice(0, (process.stderr.columns || 100) - 1)}\x1b[K`);
    this.barLive = true;
  }

  clearBar(): void {
    if (!this.barLive) return;
    this.err.write("\r\x1b[K");
    this.barLive = false;
  }
}

export function kb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.round(bytes / 1024)} KB`;
}
