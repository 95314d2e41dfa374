/*
 * The self-test and the network (docs/agent.md, "the network" in the self-test): a network that comes up
 * late with the app signalling it, one that never comes up on the new image's boot, one that never
 * comes up with a release at all (the retry cap), and a release that fails its own check while
 * the network is down too (the image's failure wins: refused for good). SimDevice's networkUpMs
 * picks the boots whose network is late or absent. Run with the rest of host-sim/lab/scenarios.ts on
 * both engines.
 */
import type { Scenario } from "./scenario";
import type { BootRecord } from "../chip/device";

const V11 = { version: "1.1.0", secureVersion: 1 };
const LAB_DIAGNOSTICS = { windowMs: 30_000, heapFloor: 16 * 1024, checkTimeoutMs: 10_000 };
/** The app brings up its own network and says so (App.networkUp()). */
const appNetwork = (networkDeadlineMs = 60_000) => ({ diagnostics: { ...LAB_DIAGNOSTICS, waitForNetwork: true, networkDeadlineMs } });
const RETRY = { networkRetry: { baseMs: 60_000, maxMs: 600_000, maxAttempts: 3 } };
/** The network of boot n (the first boot of the new image is boot 2) comes up at `ms` (-1: never). */
const onBoot = (n: number, ms: number) => (b: BootRecord) => (b.n === n ? ms : undefined);

export const networkScenarios: Scenario[] = [
  {
    name: "network-late-app", summary: "the new image's network comes up after 40 s and the app says so: its window starts then, committed at the first boot",
    releases: [{ image: V11 }], config: { ...appNetwork(), ...RETRY }, device: { networkUpMs: onBoot(2, 40_000) },
    expect: { version: "1.1.0", final: "committed", boots: 2 },
  },
  {
    name: "network-never-retry", summary: "the network never comes up on the new image's boot: rolled back CONFIRM_NETWORK, retried after the backoff, committed",
    releases: [{ image: V11 }], config: { ...appNetwork(), ...RETRY }, device: { networkUpMs: onBoot(2, -1) },
    expect: { version: "1.1.0", final: "committed", boots: 4, includes: [["rolled-back", "CONFIRM_NETWORK"], ["checking", null], ["committed", null]] },
  },
  {
    name: "network-down-default", summary: "network up at start (the default) but the update host unreachable on the new image's boot: CONFIRM_UNREACHABLE, retried, committed",
    releases: [{ image: V11 }], config: RETRY, device: { networkUpMs: onBoot(2, -1) },
    expect: { version: "1.1.0", final: "committed", boots: 4, includes: [["rolled-back", "CONFIRM_UNREACHABLE"], ["committed", null]] },
  },
  {
    name: "network-retry-cap", summary: "the network never comes up with 1.1.0: two network rollbacks, then refused POLICY_ROLLBACK_CAP",
    releases: [{ image: V11 }], config: { ...appNetwork(), networkRetry: { baseMs: 60_000, maxMs: 600_000, maxAttempts: 2 } },
    device: { networkUpMs: (b) => (b.version === "1.1.0" ? -1 : undefined) },
    expect: { version: "1.0.0", final: "refused", code: "POLICY_ROLLBACK_CAP", boots: 5, app0Untouched: true, includes: [["rolled-back", "CONFIRM_NETWORK"], ["rolled-back", "CONFIRM_NETWORK"], ["refused", "POLICY_ROLLBACK_CAP"]] },
  },
  {
    name: "app-check-fails-no-network", summary: "an app check fails while the network is down too: the image's failure (CONFIRM_DIAGNOSTICS), refused for good after a power cycle",
    releases: [{ image: { ...V11, behavior: "fail-diagnostics" } }, { image: { ...V11, behavior: "fail-diagnostics" } }], config: { ...appNetwork(), ...RETRY },
    device: { networkUpMs: onBoot(2, -1) },
    expect: { version: "1.0.0", final: "rolled-back", code: "CONFIRM_DIAGNOSTICS", boots: 4, app0Untouched: true },
  },
];
