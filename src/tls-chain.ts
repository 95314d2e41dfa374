/*
 * The certificate-chain check every TLS session of the agent gets (src/http.ts for HTTPS,
 * src/mqtt.ts for MQTT over securesocket), over SDK 8.2.3's CertificateManager, and the trust
 * anchors it holds the chain to: the pinned CA, or every certificate of a request's `ca` PEM
 * (HttpRequestOptions.ca, MqttConnectOptions.ca: a root's anchors during a CA rollover, a redirect
 * host's CA), which then replace the pinned one for that session.
 */
import SecureSocket from "securesocket";
import X509 from "x509";
import { bytesEqual, fromBase64 } from "../modules/bytes";
import { basicConstraintsCa, sanMatches } from "./signature-checks";

/** The part of SDK 8.2.3's ssl/cert CertificateManager used here (modules/crypt/ssl/ssl_cert.js). */
export interface CertificateManagerLike {
  verify(certs: ArrayBuffer[], options: unknown): boolean;
  _verify(spki: unknown, x509: unknown): boolean;
  /** Adds a trust anchor to this instance; throws "date validation failed" outside its validity period. */
  register(cert: ArrayBuffer): void;
}

/** What CheckedSecureSocket reads of the `secure` dictionary (securesocket passes the rest to the SSL session). */
export interface CheckedSecureOptions {
  /** The anchor securesocket registers itself (the first of `anchors`). */
  certificate?: ArrayBuffer;
  /** Every trust anchor of the session, `certificate` first; default [certificate]. */
  anchors?: ArrayBuffer[];
  [k: string]: unknown;
}

/** Whether now is inside the certificate's validity period (as ssl_cert.js register() checks it). */
function inValidity(cert: ArrayBuffer): boolean {
  const { from, to } = X509.decodeTBS((X509.decode(cert) as { tbs: unknown }).tbs).validity;
  const now = Date.now();
  return from < now && now < to;
}

/**
 * The trust anchors of a PEM text with one or more certificates (a root's anchors, a redirect
 * host's CA), as DER, in order. A certificate outside its validity period (an old CA the root still
 * lists, or one not valid yet) or one that cannot be decoded is left out: the SDK's register()
 * throws "date validation failed" for it, which would fail the session for every other anchor too.
 * An empty result is for the caller to refuse (HTTP_TLS, MQTT_CONNECT): nothing is trusted then.
 */
export function trustAnchors(pem: string): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  const blocks = pem.split("-----END CERTIFICATE-----");
  for (const block of blocks) {
    const at = block.indexOf("-----BEGIN CERTIFICATE-----");
    if (at < 0) continue;
    try {
      const der = fromBase64(block.slice(at + 27).replace(/\s+/g, ""));
      const cert = new ArrayBuffer(der.byteLength);
      new Uint8Array(cert).set(der);
      if (inValidity(cert)) out.push(cert);
    } catch {
      // not a certificate: not an anchor
    }
  }
  return out;
}

/** Whether the certificate's basicConstraints (2.5.29.19) say cA TRUE. */
function isCa(cert: ArrayBuffer): boolean {
  const value = X509.decodeExtension(cert, [2, 5, 29, 19]);
  return basicConstraintsCa(value ? new Uint8Array(value) : undefined);
}

/**
 * Whether `cert` is one of the anchors, or is signed by the key of an anchor that is a CA
 * (basicConstraints). Each anchor is tried on its own: one that cannot check this signature (another
 * key type) does not stop the next.
 */
function anchoredBy(cm: CertificateManagerLike, cert: ArrayBuffer, anchors: readonly ArrayBuffer[]): boolean {
  const bytes = new Uint8Array(cert);
  for (const a of anchors) if (bytesEqual(bytes, new Uint8Array(a))) return true;
  const x509 = X509.decode(cert);
  for (const a of anchors) {
    try {
      if (isCa(a) && cm._verify(X509.decodeSPKI(a), x509)) return true;
    } catch {
      // this anchor cannot check it; the next may
    }
  }
  return false;
}

/**
 * A server that sends its leaf alone (nginx or Python with server.pem only, the usual set-up for a
 * private CA): SDK 8.2.3's verify() matches the host name only inside its loop over every
 * certificate but the last, so for one certificate it returns that loop's `match`, undefined, and
 * the handshake failed (HTTP_TLS) where Node accepts it. Here the leaf alone is held to what Node
 * holds it to: in its validity period, its subjectAltName naming the server, and signed by the key
 * of an anchor that is a CA (basicConstraints), or being an anchor itself (a pinned self-signed
 * server certificate).
 */
function leafAlone(cm: CertificateManagerLike, leaf: ArrayBuffer, anchors: readonly ArrayBuffer[], serverName: string | undefined): boolean {
  if (!inValidity(leaf)) return false;
  if (!sanMatches(X509.decodeSAN(leaf), serverName)) return false;
  return anchoredBy(cm, leaf, anchors);
}

/**
 * SDK 8.2.3's verify() does not hold the leaf to its signature: when the leaf does not verify
 * against the next certificate it falls back to checking the chain's last certificate against
 * the registered ones, so a leaf the pinned CA never signed, sent with the pinned CA's own public
 * certificate, was accepted (a man in the middle; docs/simulator.md "TLS on Moddable"). On this
 * session's certificate manager (an instance: the preloaded class stays frozen), verify() now also
 * needs every certificate signed by the next one, every issuer a CA, and the last one signed by an
 * anchor's key (an anchor that is a CA) or being an anchor itself, with the SDK's own signature
 * check (_verify). The anchors after the first are registered on the instance too, so the SDK's
 * own verify() (which must also pass) finds every one of them; `anchors[0]` is the certificate
 * securesocket registered. Throws (fail closed) without a certificate manager or an anchor.
 */
export function holdChainToItsSignatures(cm: CertificateManagerLike | undefined, anchors: readonly ArrayBuffer[]): void {
  // Fail closed: without the check the SDK's fallback would let a forged leaf through again.
  if (!cm || typeof cm._verify !== "function" || typeof cm.register !== "function" || anchors.length === 0) throw new Error("TLS: no certificate manager or no trust anchor to hold the chain to (Moddable SDK 8.2.3's ssl_cert.js expected)");
  for (let i = 1; i < anchors.length; i++) cm.register(anchors[i]!);
  const sdkVerify = cm.verify;
  // defineProperty, not assignment: the frozen prototype's verify is not writable, and assigning
  // over an inherited read-only property throws ("set verify: not writable").
  Object.defineProperty(cm, "verify", { configurable: true, value: function (this: CertificateManagerLike, certs: ArrayBuffer[], options: { tls_server_name?: string }): boolean {
    if (certs.length === 1) {
      try {
        return leafAlone(this, certs[0]!, anchors, options?.tls_server_name);
      } catch {
        return false;
      }
    }
    if (!sdkVerify.call(this, certs, options)) return false;
    try {
      // every issuer is a CA (basicConstraints cA TRUE): else any leaf the pinned CA signed could
      // sign a certificate for the update host or the broker (Node's OpenSSL refuses it the same)
      for (let i = 0; i + 1 < certs.length; i++) {
        if (!isCa(certs[i + 1]!) || !this._verify(X509.decodeSPKI(certs[i + 1]!), X509.decode(certs[i]!))) return false;
      }
      const last = certs[certs.length - 1];
      return last !== undefined && anchoredBy(this, last, anchors);
    } catch {
      return false;
    }
  } });
}

/**
 * SecureSocket whose session holds the chain to holdChainToItsSignatures (each signed by the next,
 * issuers CAs, the last by an anchor): `secure.anchors` (default [secure.certificate]).
 */
export class CheckedSecureSocket extends SecureSocket {
  constructor(dict: { secure?: CheckedSecureOptions; [k: string]: unknown }) {
    super(dict);
    const secure = dict.secure;
    const anchors = secure?.anchors ?? (secure?.certificate ? [secure.certificate] : []);
    try {
      holdChainToItsSignatures((this as unknown as { ssl?: { certificateManager?: CertificateManagerLike } }).ssl?.certificateManager, anchors);
    } catch (e) {
      // as securesocket does when its own setup throws: no socket left open behind the error
      (this as unknown as { close(): void }).close();
      throw e;
    }
  }
}
