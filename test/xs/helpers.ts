/*
 * Test-side pieces for test/xs: thin Ports over the real SimFlash (partitions "scratch" and
 * the app slots), an NVS-like store with Moddable's limits, (re-exported) the Node engine
 * for any firmware module, and the two-engine scenario runner.
 */
import type { FlashPartition, FlashPort, StorePort, StoreValue } from "../../modules/ports";
import { OtaError } from "../../modules/errors";
import { beforeAll, afterAll } from "vitest";
import { SimFlash } from "../../host-sim/chip/flash";
import { runScenario, Lab, type Scenario, type Outcome } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { createXsEngine } from "../../host-sim/engines/xs";

export function flashPort(flash: SimFlash, layout: Record<string, [offset: number, size: number]>): FlashPort {
  return {
    open(label: string): FlashPartition {
      const entry = layout[label];
      if (!entry) throw new OtaError("FLASH_NO_PARTITION", label);
      const [base, size] = entry;
      const check = (o: number, n: number) => {
        if (o < 0 || o + n > size) throw new OtaError("FLASH_OUT_OF_BOUNDS", `${label} ${o}+${n}`);
      };
      return {
        byteLength: size,
        blockSize: 4096,
        read(o, t) { check(o, t.length); flash.read(base + o, t); },
        write(o, d) { check(o, d.length); flash.write(base + o, d); },
        eraseBlock(b) { check(b * 4096, 4096); flash.erase((base >> 12) + b); },
      };
    },
    slots: () => ({ count: 2, running: 0, next: 1 }),
  };
}

export function memoryStore(): StorePort & { data: Map<string, StoreValue> } {
  const data = new Map<string, StoreValue>();
  const name = (d: string, k: string) => {
    if (d.length > 15 || k.length > 15) throw new OtaError("STORE_KEY", `${d}/${k}`);
    return `${d}\u0000${k}`;
  };
  return {
    data,
    get: (d, k) => data.get(name(d, k)),
    set(d, k, v) {
      if (typeof v === "number" && !Number.isInteger(v)) throw new OtaError("STORE_VALUE", "integers only");
      data.set(name(d, k), v instanceof ArrayBuffer ? v.slice(0) : v);
    },
    delete(d, k) { data.delete(name(d, k)); },
    keys: (d) => [...data.keys()].filter((x) => x.startsWith(`${d}\u0000`)).map((x) => x.slice(d.length + 1)),
  };
}

export { nodeEngineFor } from "../../host-sim/engines/engine-node";

/**
 * For a test file that runs scenarios in both engines: a Lab and the XS engine made before its
 * tests and closed after them, and `both(s)`, one run of `s` in Node then one in XS.
 */
export function inBothEngines(): { both(s: Scenario, powerCutAt?: number): Promise<{ n: Outcome & { factoryApp0: string }; x: Outcome & { factoryApp0: string } }> } {
  let lab: Lab;
  const node = createNodeEngine();
  const xs = createXsEngine();
  beforeAll(async () => {
    lab = await Lab.create();
    await xs.prepared();
  });
  afterAll(async () => {
    await xs.close();
    await lab?.close();
  });
  return {
    async both(s, powerCutAt) {
      const options = powerCutAt === undefined ? {} : { powerCutAt };
      const n = await runScenario(s, node, lab, options);
      const x = await runScenario(s, xs, lab, options);
      return { n, x };
    },
  };
}
