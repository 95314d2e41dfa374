/*
 * SystemPort for the simulated device. restart() does not return on the chip; here it tells
 * the device (which stops this boot's firmware) and then throws nothing: the engine's gate
 * makes every later port call of this boot inert.
 */
import type { ResetReason, SystemPort } from "../../../modules/ports";

export interface SimSystemOptions {
  deviceId: string;
  hardware: string;
  chipId?: number;
  freeHeap?: number;
  resetReason: ResetReason;
  onRestart(reason: string): void;
  onLog(line: string): void;
}

export class SimSystem implements SystemPort {
  constructor(private readonly o: SimSystemOptions) {}
  restart(reason: string): void {
    this.o.onRestart(reason);
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
    return this.o.chipId ?? 0;
  }
  freeHeap(): number {
    return this.o.freeHeap ?? 180 * 1024;
  }
  log(line: string): void {
    this.o.onLog(line);
  }
}
