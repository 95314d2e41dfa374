/*
 * An existing app (it counts and traces) that gains over-the-air updates: the include of
 * ../../manifest.json in its manifest, config.xsota there, and the three lines marked "xsota".
 */
import Timer from "timer";
import OTA from "xsota"; // xsota

let ticks = 0;
Timer.repeat(() => trace(`tick ${++ticks}\n`), 1000);

const ota = new OTA({ checks: [{ name: "ticking", run: () => ticks > 0 }] }); // xsota: an app self-test
ota.start(); // xsota
