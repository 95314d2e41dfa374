/*
 * `xsota device --engine moddable`: the same device run as the node and xs engines, on Moddable's
 * own runtime. Builds (or reuses) out/moddable-host, then boots it over the flash file in place
 * (--out: over a copy), NVS in <flash>.nvs/. Returns the outcome SimDevice runs give.
 */
import { copyFileSync, cpSync, existsSync } from "node:fs";
import { OtaError } from "../../../modules/errors";
import type { AuditEvent } from "../../../modules/events";
import { outcomeOf, type Outcome } from "../../lab/scenarios";
import type { BootRecord } from "../../chip/device";
import { moddableProgram } from "./build";
import { ModdableDevice } from "./driver";

export interface ModdableRunOptions {
  flashPath: string;
  out?: string;
  config: Record<string, unknown>;
  caPem: string;
  deviceId: string;
  hardware: string;
  onEvent?(e: AuditEvent): void;
  onProgress?(written: number, total: number): void;
  onLog?(line: string): void;
  onBoot?(b: BootRecord): void;
  say?(line: string): void;
}

export async function runModdable(o: ModdableRunOptions): Promise<{ outcome: Outcome; flash: string; lastOta?: string }> {
  const built = moddableProgram((line) => o.say?.(line));
  if ("skip" in built) throw new OtaError("USAGE", `the moddable engine is not available: ${built.skip}`);
  const flash = o.out ?? o.flashPath;
  if (o.out && o.out !== o.flashPath) {
    copyFileSync(o.flashPath, o.out);
    if (existsSync(`${o.flashPath}.chip.json`)) copyFileSync(`${o.flashPath}.chip.json`, `${o.out}.chip.json`);
    if (existsSync(`${o.flashPath}.nvs`)) cpSync(`${o.flashPath}.nvs`, `${o.out}.nvs`, { recursive: true });
  }
  let lastOta: string | undefined;
  const device = new ModdableDevice({
    program: built.program, flashPath: flash, config: o.config, caPem: o.caPem, deviceId: o.deviceId, hardware: o.hardware,
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.onBoot ? { onBoot: o.onBoot } : {}),
    onLog: (line) => {
      if (line.startsWith("ota ")) lastOta = line;
      o.onLog?.(line);
    },
  });
  await device.run();
  return { outcome: outcomeOf("device", device), flash, ...(lastOta ? { lastOta } : {}) };
}
