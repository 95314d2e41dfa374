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
import { readChildren, readTlv, integerBytes } from "../../modules/der";

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
   * The chain a server sends: the leaf, then the CA that signed it. The SDK's ssl_cert.js verify()
   * checks the host name only inside its loop over every certificate but the last, so a leaf sent
   * alone failed there; src/tls-chain.ts now accepts it when the pinned CA signed it
   * (test/{agent,moddable}/tls-servers.test.ts). Both are sent here, as most hosts do.
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

/** A random positive 64-bit serial number, hex. */
const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString("hex").replace(/^[89a-f]/, "1");

/**
 * Why Moddable's TLS cannot verify this certificate's signature, or undefined. Moddable SDK 8.2.3
 * (modules/crypt/ssl/ssl_cert.js `_verify`) turns an ECDSA signature into r||s with
 * `ArrayBuffer.fromBigInt(r).concat(ArrayBuffer.fromBigInt(s))`, minimal lengths, and ecdsa.js
 * `verify` splits that at the curve's size: when r has a leading zero byte (about 1 signature in
 * 256) r and s are misread and the signature never verifies, on every device, every time
 * (HTTP_TLS). The SDK checks the chain's last certificate (the CA the server sends) against the
 * pinned one (5 of about 1,500 fresh test PKIs here failed so); src/tls-chain.ts also holds every other
 * certificate to its signature with the same check (the SDK alone did not: docs/simulator.md, "TLS on
 * Moddable"), so a leaf with such a signature is refused too.
 * A short s is harmless (r is read right, s is the rest); RSA signatures are not affected.
 */
export function moddableTlsDefect(der: Uint8Array): string | undefined {
  const sig = ecdsaSignature(der);
  if (!sig) return undefined;
  const longest = Math.max(sig.r.length, sig.s.length);
  const size = longest <= 32 ? 32 : longest <= 48 ? 48 : 66;
  if (sig.r.length >= size) return undefined;
  return `its ECDSA signature's r has ${sig.r.length} bytes, not ${size}: Moddable's TLS (SDK 8.2.3 ssl_cert.js) misreads it`;
}

/** r and s (minimal unsigned bytes) of a certificate's ECDSA signature; undefined for another algorithm. */
export function ecdsaSignature(der: Uint8Array): { r: Uint8Array; s: Uint8Array } | undefined {
  const [, algo, sig] = readChildren(der, readTlv(der, 0));
  if (!algo || !sig || sig.tag !== 0x03) throw new TypeError("not an X.509 certificate");
  const oid = readChildren(der, algo)[0]!;
  // ecdsa-with-SHA224/256/384/512: 1.2.840.10045.4.3.1-4
  const ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
  if (oid.end - oid.start !== 8 || ecdsa.some((b, i) => der[oid.start + i] !== b)) return undefined;
  const value = der.subarray(sig.start + 1, sig.end); // past the unused-bits byte
  const [r, s] = readChildren(value, readTlv(value, 0)).map((t) => integerBytes(value, t));
  return { r: r!, s: s! };
}

/** The certificates of a PEM chain, in order, each as its own PEM block. */
export function pemCertificates(chainPem: string): string[] {
  return chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

/**
 * moddableTlsDefect for each certificate of a PEM chain (leaf first): "certificate N of M
 * (subject): why, and what it does to a device".
 */
export function chainTlsDefects(chainPem: string): string[] {
  const out: string[] = [];
  const blocks = pemCertificates(chainPem);
  blocks.forEach((block, i) => {
    const why = moddableTlsDefect(unpem(block));
    if (!why) return;
    const effect = "every Moddable device refuses this host (HTTP_TLS): re-sign this certificate (the same key: devices pinned to it keep working) or reissue it";
    out.push(`certificate ${i + 1} of ${blocks.length} (${new x509.X509Certificate(block).subject}): ${why}; ${effect}`);
  });
  return out;
}

/**
 * Sign until Moddable's TLS can verify the result (a few tries at most: each is 1 in 256 to be
 * refused). `want: "defect"` (tests) signs until it cannot.
 */
async function signed(make: () => Promise<x509.X509Certificate>, want: "verifiable" | "defect" = "verifiable"): Promise<x509.X509Certificate> {
  for (let tries = want === "defect" ? 8192 : 32; tries > 0; tries--) {
    const cert = await make();
    if ((moddableTlsDefect(new Uint8Array(cert.rawData)) === undefined) === (want === "verifiable")) return cert;
  }
  throw new Error(`no ${want} signature after many tries`);
}

/** A self-signed CA (valid from yesterday for 10 years). Writes ca.pem and ca.key when `dir` is given. */
export async function makeCa(dir?: string, name = "xsota test CA", options: { /** Tests: a self-signature Moddable's TLS cannot verify (moddableTlsDefect). */ moddableDefect?: boolean; /** BasicConstraints pathLenConstraint (default 0: no intermediate below it). */ pathLength?: number; /** Validity in days (default 3650). */ days?: number;
  /** Tests: the validity period itself (e.g. a CA that expired yesterday, a CA rollover's old anchor); overrides `days`. */ notBefore?: Date; notAfter?: Date } = {}): Promise<CaBundle> {
  const keys = await newKeys();
  const cert = await signed(async () => x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: options.notBefore ?? new Date(Date.now() - day),
    notAfter: options.notAfter ?? new Date(Date.now() + (options.days ?? 3650) * day),
    signingAlgorithm: ALG,
    keys,
    // Key identifiers are not optional for Moddable: ssl_cert.js verify() compares the authority key
    // id of each certificate after the leaf (here the CA itself) with the pinned CA's subject key id,
    // and Bin.comp throws on a missing one. A root carrying its own AKI is common practice (RFC 5280 4.2.1.1).
    extensions: [
      new x509.BasicConstraintsExtension(true, options.pathLength ?? 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
    ],
  }), options.moddableDefect ? "defect" : "verifiable");
  const bundle = { caCertPem: cert.toString("pem") + "\n", caKeyPem: await exportKey(keys.privateKey) };
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "ca.pem"), bundle.caCertPem);
    writeFileSync(join(dir, "ca.key"), bundle.caKeyPem, { mode: 0o600 });
  }
  return bundle;
}

/** An intermediate CA signed by `root` (tests: chains of three, as public CAs serve them). Its bundle signs server certificates like a root's. */
export async function makeIntermediateCa(root: CaBundle, name = "xsota test intermediate CA"): Promise<CaBundle> {
  const rootCert = new x509.X509Certificate(root.caCertPem);
  const rootKey = await webcrypto.subtle.importKey("pkcs8", unpem(root.caKeyPem), ALG, false, ["sign"]);
  const keys = await newKeys();
  const cert = await signed(async () => x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: rootCert.subject,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + 1825 * day),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: rootKey as unknown as SigningKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert.publicKey),
    ],
  }));
  return { caCertPem: cert.toString("pem") + "\n", caKeyPem: await exportKey(keys.privateKey) };
}

/** A server certificate signed by `ca` for `hosts` (IP addresses and DNS names), as the chain leaf + CA. */
export async function makeServerCert(ca: CaBundle, options: { hosts?: string[]; days?: number; /** Tests: a signature Moddable's TLS cannot verify (moddableTlsDefect). */ moddableDefect?: boolean } = {}): Promise<ServerCert> {
  const hosts = options.hosts ?? ["127.0.0.1", "localhost"];
  const caCert = new x509.X509Certificate(ca.caCertPem);
  const caKey = await webcrypto.subtle.importKey("pkcs8", unpem(ca.caKeyPem), ALG, false, ["sign"]);
  const keys = await newKeys();
  const cert = await signed(async () => x509.X509CertificateGenerator.create({
    serialNumber: serial(),
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
  }), options.moddableDefect ? "defect" : "verifiable");
  return { certPem: cert.toString("pem") + "\n" + ca.caCertPem, keyPem: await exportKey(keys.privateKey) };
}
