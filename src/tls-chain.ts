/*
 * The certificate-chain check every TLS session of the agent gets (src/http.ts for HTTPS,
 * src/mqtt.ts for MQTT over securesocket), over SDK 8.2.3's CertificateManager.
 */
import SecureSocket from "securesocket";
import X509 from "x509";
import { bytesEqual } from "../modules/bytes";
import { basicConstraintsCa, sanMatches } from "./signature-checks";

/** The part of SDK 8.2.3's ssl/cert CertificateManager used here (modules/crypt/ssl/ssl_cert.js). */
export interface CertificateManagerLike {
  verify(certs: ArrayBuffer[], options: unknown): boolean;
  _verify(spki: unknown, x509: unknown): boolean;
}

/**
 * SDK 8.2.3's verify() does not hold the leaf to its signature: when the leaf does not verify
 * against the next certificate it falls back to checking the chain's last certificate against
 * the pinned one, so a leaf the pinned CA never signed, sent with the pinned CA's own public
 * certificate, was accepted (a man in the middle; docs/simulator.md "TLS on Moddable"). On this session's
 * certificate manager (an instance: the preloaded class stays frozen), verify() now also needs
 * every certificate signed by the next one and the last one signed by the pinned certificate's
 * key (or being the pinned certificate itself), with the SDK's own signature check (_verify).
 */
/** Whether the certificate's basicConstraints (2.5.29.19) say cA TRUE. */
function isCa(cert: ArrayBuffer): boolean {
  const value = X509.decodeExtension(cert, [2, 5, 29, 19]);
  return basicConstraintsCa(value ? new Uint8Array(value) : undefined);
}

/**
 * A server that sends its leaf alone (nginx or Python with server.pem only, the usual set-up for a
 * private CA): SDK 8.2.3's verify() matches the host name only inside its loop over every
 * certificate but the last, so for one certificate it returns that loop's `match`, undefined, and
 * the handshake failed (HTTP_TLS) where Node accepts it. Here the leaf alone is held to what Node
 * holds it to: in its validity period, its subjectAltName naming the server, and signed by the
 * pinned certificate's key with the pinned certificate a CA (basicConstraints), or being the pinned
 * certificate itself (a pinned self-signed server certificate).
 */
function leafAlone(cm: CertificateManagerLike, leaf: ArrayBuffer, pinned: ArrayBuffer, serverName: string | undefined): boolean {
  const x509 = X509.decode(leaf) as { tbs: unknown };
  const { from, to } = X509.decodeTBS(x509.tbs).validity;
  const now = Date.now();
  if (!(from < now && now < to)) return false;
  if (!sanMatches(X509.decodeSAN(leaf), serverName)) return false;
  if (bytesEqual(new Uint8Array(leaf), new Uint8Array(pinned))) return true;
  return isCa(pinned) && cm._verify(X509.decodeSPKI(pinned), x509);
}

export function holdChainToItsSignatures(cm: CertificateManagerLike | undefined, pinned: ArrayBuffer | undefined): void {
  // Fail closed: without the check the SDK's fallback would let a forged leaf through again.
  if (!cm || typeof cm._verify !== "function" || !pinned) throw new Error("TLS: no certificate manager to hold to the chain check (Moddable SDK 8.2.3's ssl_cert.js expected)");
  const sdkVerify = cm.verify;
  // defineProperty, not assignment: the frozen prototype's verify is not writable, and assigning
  // over an inherited read-only property throws ("set verify: not writable").
  Object.defineProperty(cm, "verify", { configurable: true, value: function (this: CertificateManagerLike, certs: ArrayBuffer[], options: { tls_server_name?: string }): boolean {
    if (certs.length === 1) {
      try {
        return leafAlone(this, certs[0]!, pinned, options?.tls_server_name);
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
      if (!last) return false;
      return bytesEqual(new Uint8Array(last), new Uint8Array(pinned)) || (isCa(pinned) && this._verify(X509.decodeSPKI(pinned), X509.decode(last)));
    } catch {
      return false;
    }
  } });
}

/** SecureSocket whose session holds the chain to holdChainToItsSignatures (each signed by the next, issuers CAs, the last by the pinned certificate). */
export class CheckedSecureSocket extends SecureSocket {
  constructor(dict: { secure?: { certificate?: ArrayBuffer }; [k: string]: unknown }) {
    super(dict);
    holdChainToItsSignatures((this as unknown as { ssl?: { certificateManager?: CertificateManagerLike } }).ssl?.certificateManager, dict.secure?.certificate);
  }
}
