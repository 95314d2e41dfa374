/*
 * The simulated firmware with every feature (host-sim/engines/firmware-core.ts): what the Node and XS
 * engines boot. XS-safe: imports only modules/ and the core.
 */
import { FLEET } from "../../modules/reporter";
import { DELTA } from "../../modules/delta-download";
import { CONTROL } from "../../modules/agent-control";
import { firmwareWith } from "./firmware-core";

export { EVENT_PREFIX, PROGRESS_PREFIX, type FirmwareHandle, type BootFirmware } from "./firmware-core";

export const bootFirmware = firmwareWith({ fleet: FLEET, delta: DELTA, control: CONTROL });
