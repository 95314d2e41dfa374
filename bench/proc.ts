/*
 * CPU and peak memory of processes outside the bench's own (mosquitto, PostgreSQL and its
 * backends), read from Linux's /proc: so a figure per device counts the broker and the database
 * whether they run in the simulator's process (aedes, SQLite) or beside it.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; cpu: number; childCpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // after "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based from field 3
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK, childCpu: (Number(f[13]) + Number(f[14])) / TICK };
  } catch {
    return undefined;
  }
}

function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and every live descendant. */
function tree(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (s) kids.set(s.ppid, [...(kids.get(s.ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  for (let todo = [pid]; todo.length; ) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) of a process tree so far, exited and reaped children included. */
export function treeCpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  return tree(pid).reduce((n, p) => {
    const s = stat(p);
    return n + (s ? s.cpu + s.childCpu : 0);
  }, 0);
}

/** Sum of the peak RSS of a process tree's live processes, MB (shared pages count in each). */
export function treePeakRssMb(pid: number | undefined): number {
  if (!pid) return 0;
  return tree(pid).reduce((n, p) => n + peakRssMb(p), 0);
}
