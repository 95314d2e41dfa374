import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { OtaError } from "../modules/errors";
import { chainTlsDefects, makeCa, makeServerCert, type CaBundle } from "../backend/release/pki";
import { startUpdateHost, type RequestLog } from "../backend/update-host";
import { parse, printJson, EXIT, color, type Command } from "./common";

export const command: Command = {
  name: "serve",
  summary: "serve a release tree over HTTPS (Range, ETag)",
  help: `Usage: xsota serve --dir public/ [--port 8443] [--host 127.0.0.1] [--cert cert.pem --key key.pem | --self-signed-ca out/] [--json]
       xsota serve --redirect-to https://HOST:PORT [--port 8444] [...]

Serve a published tree over HTTPS: Range requests (206 + Content-Range), strong ETags and
If-Range (a changed file restarts the download), HEAD, 416 with "bytes */size" past the end.
It is the local update host of the simulator, the demo and the tests. Runs until Ctrl-C.

Options:
  --dir D              the tree xsota publish wrote
  --port N             default 8443 (0 = any free port)
  --host H             listen address, default 127.0.0.1
  --cert F --key F     a server certificate and its key (PEM). F must hold the chain: the leaf,
                       then its CA. A Moddable device (ssl_cert.js) never verifies a leaf
                       sent alone: it checks the host name only in certificates that have
                       an issuer after them
  --self-signed-ca D   make (or reuse) a CA in D (ca.pem, ca.key) and a server certificate for
                       127.0.0.1 and localhost signed by it (served as leaf + CA); devices pin
                       D/ca.pem. The default,
                       with D = .xsota-ca
  --redirect-to URL    answer every request with 302 to URL + its path and query (a CDN or a
                       pre-signed URL in front of the real host); --dir is not needed
  --quiet              do not log requests
  --json               print {url, ca} once listening

Examples:
  xsota serve --dir public/ --self-signed-ca out/ca
  xsota serve --dir public/ --port 8443 --host 0.0.0.0 --self-signed-ca out/ca   # or --cert F --key F
  xsota serve --redirect-to https://127.0.0.1:8443 --port 8444 --self-signed-ca out/ca
`,
  async run(argv) {
    const { values } = parse(argv, {
      dir: { type: "string" },
      port: { type: "string", default: "8443" },
      host: { type: "string", default: "127.0.0.1" },
      cert: { type: "string" },
      key: { type: "string" },
      "self-signed-ca": { type: "string" },
      quiet: { type: "boolean" },
      json: { type: "boolean" },
      "redirect-to": { type: "string" },
    }, false);
    const redirectTo = values["redirect-to"];
    if (redirectTo !== undefined && !/^https?:\/\/[^/]+/i.test(redirectTo)) throw new OtaError("USAGE", `--redirect-to ${redirectTo}: expected an http(s) URL`);
    const dir = values.dir ?? (redirectTo !== undefined ? "." : undefined);
    if (!dir) throw new OtaError("USAGE", "missing --dir");
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OtaError("FILE_NOT_FOUND", `--dir ${dir} is not a directory`);
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OtaError("USAGE", `--port must be 0..65535`);
    if (!!values.cert !== !!values.key) throw new OtaError("USAGE", "--cert and --key go together");
    if (values.cert && values["self-signed-ca"]) throw new OtaError("USAGE", "give --cert/--key or --self-signed-ca, not both");
    let cert: string;
    let key: string;
    let caPath: string | null = null;
    if (values.cert) {
      cert = readFileSync(values.cert, "utf8");
      key = readFileSync(values.key!, "utf8");
    } else {
      const caDir = values["self-signed-ca"] ?? ".xsota-ca";
      if (redirectTo === undefined && (resolve(caDir) + sep).startsWith(resolve(dir) + sep)) throw new OtaError("USAGE", `--self-signed-ca ${caDir} is inside --dir ${dir}: the CA key would be served`);
      let ca: CaBundle;
      if (existsSync(join(caDir, "ca.pem")) && existsSync(join(caDir, "ca.key"))) ca = { caCertPem: readFileSync(join(caDir, "ca.pem"), "utf8"), caKeyPem: readFileSync(join(caDir, "ca.key"), "utf8") };
      else ca = await makeCa(caDir, "xsota local update host CA");
      const hosts = ["127.0.0.1", "localhost", ...(values.host !== "127.0.0.1" && values.host !== "0.0.0.0" ? [values.host!] : [])];
      ({ certPem: cert, keyPem: key } = await makeServerCert(ca, { hosts }));
      caPath = join(caDir, "ca.pem");
    }
    // Moddable's TLS refuses about 1 ECDSA certificate in 256 (release/pki.ts moddableTlsDefect):
    // say so before a fleet is pointed at this host. Certificates made here are re-signed until fine.
    for (const why of chainTlsDefects(cert)) process.stderr.write(color.yellow(`warning: ${why}\n`));
    const log = (e: RequestLog) => process.stderr.write(`${new Date().toISOString()} ${e.method} ${e.path}${e.range ? ` [${e.range}]` : ""} -> ${e.status} ${e.bytes} bytes\n`);
    const host = await startUpdateHost({ dir, cert, key, port, host: values.host!, ...(redirectTo !== undefined ? { redirectTo } : {}), ...(values.quiet ? {} : { onLog: log }) });
    const url = values.host === "0.0.0.0" ? `https://127.0.0.1:${host.port}` : host.url;
    if (values.json) printJson({ url, port: host.port, dir, ca: caPath });
    else if (redirectTo !== undefined) process.stderr.write(`${color.green("redirecting")} ${url}/* to ${redirectTo}/*${caPath ? ` (devices pin ${caPath})` : ""}; Ctrl-C stops\n`);
    else process.stderr.write(`${color.green("serving")} ${dir} at ${url}${caPath ? ` (devices pin ${caPath})` : ""}; Ctrl-C stops\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await host.close();
    return EXIT.OK;
  },
};
