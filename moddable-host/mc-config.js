/*
 * "mc/config" for the x-cli-lin program: mcconfig generates none for x-cli targets, and two SDK
 * modules read it: ssl_ciphersuites.js (config.tls) and preference/lin (config.file.root, where
 * modpreferences.json lives). The root comes from the command line (--nvs DIR), so each simulated
 * device keeps its NVS beside its flash file.
 */
import { File } from "file";
import { args } from "xsota/moddable-host/native";

// Preloaded like the devkit's mc/config (moddable-host/manifest.json "preload"): the root is read
// from the arguments when first asked for, at run time, not when xsl runs the module at link time.
function root() {
	const argv = args();
	const at = argv.indexOf("--nvs");
	const dir = at >= 0 && argv[at + 1] ? argv[at + 1] : "/tmp";
	return dir.endsWith("/") ? dir : dir + "/";
}

// config.xsota of an app built with the component (--app): the driver's config and CA(s) from
// BOOT.json, as an app's manifest would give them on the devkit.
function xsota() {
	const argv = args();
	const at = argv.indexOf("--boot");
	if (at < 0 || !argv.includes("--app")) return undefined;
	const file = new File(argv[at + 1]);
	const boot = JSON.parse(file.read(String));
	file.close();
	const out = Object.assign({}, boot.config, { ca: boot.ca });
	if (boot.mqttCa) out.mqttCa = boot.mqttCa;
	return out;
}

export default Object.freeze({
	get xsota() { return xsota(); },
	file: Object.freeze({ get root() { return root(); } }),
	tls: Object.freeze({ DHE_RSA: true, ECDHE_RSA: true }),
}, true);
