/*
 * SystemPort of the Linux program: what src/system.ts asks ESP-IDF for comes from the driver's
 * boot description (device id, board revision, chip id, the reset reason the bootloader model
 * saw) and from host.c: restart() ends the process with RESTART_STATUS and the driver starts
 * the next boot over the same flash file; freeHeap() is what the XS machine may still allocate.
 */
import type { ResetReason, SystemPort } from "../modules/ports";
import { exit, freeHeap, write } from "./native";

/** Exit statuses the driver (host-sim/engines/moddable/driver.ts) reads: 0 idle, 64 restart, 70 panic. */
export const IDLE_STATUS = 0, RESTART_STATUS = 64, PANIC_STATUS = 70;

export interface HostSystemOptions {
  deviceId: string;
  hardware: string;
  chipId: number;
  resetReason: ResetReason;
}

export class HostSystem implements SystemPort {
  /** beforeRestart: the bench's last lines (moddable-host/main.ts --timing, --memory). */
  /** onLog: each line the firmware logs (main.ts --memory names the sampler's phase after "@event" states). */
  constructor(private readonly o: HostSystemOptions, private readonly beforeRestart?: () => void, private readonly onLog?: (line: string) => void) {}
  restart(reason: string): void {
    this.beforeRestart?.();
    write(`@restart ${reason}\n`);
    exit(RESTART_STATUS);
  }
  resetReason(): ResetReason {
    return this.o.resetReason;
  }
  deviceId(): string {
    return this.o.deviceId;
  }
  hardwareRevision(): string {
    return this.o.hardware;
  }
  chipId(): number {
    return this.o.chipId;
  }
  freeHeap(): number {
    return freeHeap();
  }
  log(line: string): void {
    this.onLog?.(line);
    write(line + "\n");
  }
}
