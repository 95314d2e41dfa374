/*
 * The bench's idle baseline (host.c runs it for --idle): the same program and machine with none
 * of the agent's modules imported, only a timer ticking as an app's would. With --memory it
 * samples as main.ts does, then prints "@memory {json}" and exits 0 after one second.
 */
import Timer from "timer";
import { MemorySampler } from "./memory";
import { args, exit, write } from "./native";

export default function idle(): void {
  const sampler = args().includes("--memory") ? new MemorySampler(20) : undefined;
  let ticks = 0;
  Timer.repeat(() => {
    if (++ticks < 10) return;
    if (sampler) write(`@memory ${JSON.stringify(sampler.sample())}\n`);
    exit(0);
  }, 100);
}
