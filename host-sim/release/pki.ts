/*
 * A throwaway PKI for the local update host: a CA made at test (or `serve --self-signed-ca`)
 * time and a server certificate it signs, SAN 127.0.0.1 and localhost. ECDSA P-256 keys,
 * as an ESP32's mbedTLS handles them well. Nothing here is meant for production.
 */
import "./reflect-shim";
import { webcrypto } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
type KeyPair = x509.X509CertificateCreateSelfSignedParams["keys"];
type SigningKey = x509.X509CertificateCreateWithKeyParams["signingKey"];

x509.cryptoProvider.set(webcrypto as unknown as X509Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface CaBundle {
  caCertPem: string;
  caKeyPem: string;
}
export interface ServerCert {
  /**
   * The chain a server sends: the leaf, then the CA that signed it. Moddable's TLS needs both:
   * ssl_cert.js verify() checks the host name only inside its loop over every certificate but
   * the last, so a leaf sent alone never verifies on a device.
   */
  certPem: string;
  keyPem: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function unpem(text: string): Uint8Array {
  const body = text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(body, "base64"));
}

async function newKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as KeyPair;
}

async function exportKey(key: SigningKey): Promise<string> {
  return pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key as unknown as webcrypto.CryptoKey));
}

const day = 24 * 3600 * 1000;

/** A self-signed CA (valid from yesterday for 10 years). Writes ca.pem and ca.key when `dir` is given. */
export async function makeCa(dir?: string, name = "xsota test CA"): Promise<CaBundle> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString("hex").replace(/^[89a-f]/, "1"),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + 3650 * day),
    signingAlgorithm: ALG,
    keys,
    // Key identifiers are not optional for Moddable: ssl_cert.js verify() compares the authority key
    // id of each certificate after the leaf (here the CA itself) with the pinned CA's subject key id,
    // and Bin.comp throws on a missing one. A root carrying its own AKI is common practice (RFC 5280 4.2.1.1).
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
    ],
  });
  const bundle = { caCertPem: cert.toString("pem") + "\n", caKeyPem: await exportKey(keys.privateKey) };
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "ca.pem"), bundle.caCertPem);
    writeFileSync(join(dir, "ca.key"), bundle.caKeyPem, { mode: 0o600 });
  }
  return bundle;
}

/** A server certificate signed by `ca` for `hosts` (IP addresses and DNS names), as the chain leaf + CA. */
export async function makeServerCert(ca: CaBundle, options: { hosts?: string[]; days?: number } = {}): Promise<ServerCert> {
  const hosts = options.hosts ?? ["127.0.0.1", "localhost"];
  const caCert = new x509.X509Certificate(ca.caCertPem);
  const caKey = await webcrypto.subtle.importKey("pkcs8", unpem(ca.caKeyPem), ALG, false, ["sign"]);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString("hex").replace(/^[89a-f]/, "1"),
    subject: `CN=${hosts[0] ?? "localhost"}`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + (options.days ?? 825) * day),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey as unknown as SigningKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: /^[\d.]+$|:/.test(h) ? ("ip" as const) : ("dns" as const), value: h }))),
    ],
  });
  return { certPem: cert.toString("pem") + "\n" + ca.caCertPem, keyPem: await exportKey(keys.privateKey) };
}
