/*
 * The XS engine runner: the same modules/ inside the real XS engine (@agoric/xsnap).
 */
export { createXsEngine, type XsEngine, type XsEngineOptions, type XsRunningFirmware, type MeterTotals } from "./engine";
export { bundleFirmware, DEFAULT_FIRMWARE, XsSafetyError, type Bundle } from "./bundle";
export { prepare, type Prepared } from "./snapshot";
export { checkSource, FORBIDDEN_GLOBALS, type Finding } from "./xs-safety";
export { XsWorker, type MeterUsage } from "./worker";
