/*
 * The device's esp_encrypted_img key (issue 31), from the configuration or NVS provisioning
 * (`decryptionKey`, `decryptionHmacKey`: modules/config.ts, modules/provision.ts), never from a
 * manifest, and the opening of a file's GCM key with it:
 *  - RSA-3072: a PEM private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"); the key
 *    field's 384 bytes go through the raw private operation of the cipher port, then the
 *    PKCS#1 v1.5 check of modules/enc-image.ts (Moddable's pkcs1_5 skips the length checks);
 *  - ECIES-P256: a PEM P-256 key (PKCS#8 or SEC1 "EC PRIVATE KEY"), or the eFuse HMAC key
 *    (32 bytes, hex) the scalar is derived from as the chip does it (PBKDF2, modules/enc-kdf.ts);
 *    the header's point is checked to be on the curve before the ECDH (Moddable's Curve.dh
 *    does not check it), then HKDF gives the GCM key.
 * XS-safe: DER read by modules/der.ts, base64 by modules/bytes.ts.
 */
import type { CryptoPort, EncCipherPort, RsaPrivateKey } from "./ports";
import { OtaError } from "./errors";
import { fromBase64, fromHex } from "./bytes";
import { readTlv, readChildren, integerBytes, contentEquals, type Tlv } from "./der";
import { ENC_ECC_POINT_SIZE, ENC_KDF_SALT_SIZE, ENC_KEY_FIELD_SIZE, unwrapPkcs1v15Key, type EncHeader } from "./enc-image";
import { eccScalarFromHmacKey, eciesGcmKey, isP256Point } from "./enc-kdf";
import { constant } from "./constant";

export type DeviceKey = { scheme: "rsa3072"; rsa: RsaPrivateKey } | { scheme: "ecies-p256"; d: Uint8Array };

// frozen (modules/constant.ts): xsl leaves a preloaded module's tables in flash only when they are
const OID_RSA = constant([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
const OID_EC = constant([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
const OID_P256 = constant([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);

function pemBody(pem: string): { label: string; der: Uint8Array } {
  const m = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) throw new OtaError("KEY_FORMAT", "decryptionKey: not a PEM private key");
  let der: Uint8Array;
  try {
    der = fromBase64(m[2]!.replace(/\s+/g, ""));
  } catch {
    throw new OtaError("KEY_FORMAT", "decryptionKey: PEM body is not base64");
  }
  return { label: m[1]!, der };
}

function rsaFromPkcs1(der: Uint8Array, t: Tlv): RsaPrivateKey {
  const c = readChildren(der, t);
  if (c.length < 9) throw new TypeError("RSAPrivateKey: 9 integers expected");
  const [n, e, d, p, q, dp, dq, qi] = c.slice(1, 9).map((x) => integerBytes(der, x)) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  if (n.length !== ENC_KEY_FIELD_SIZE) throw new OtaError("KEY_TYPE", `decryptionKey: RSA-${n.length * 8}, esp_encrypted_img takes RSA-3072`);
  return { n, e, d, p, q, dp, dq, qi };
}

function ecFromSec1(der: Uint8Array, t: Tlv): Uint8Array {
  const c = readChildren(der, t);
  const priv = c[1];
  if (!priv || priv.tag !== 0x04) throw new TypeError("ECPrivateKey: privateKey OCTET STRING expected");
  for (const x of c.slice(2)) {
    if (x.tag !== 0xa0) continue;
    const oid = readTlv(der, x.start, x.end);
    if (oid.tag !== 0x06 || !contentEquals(der, oid, OID_P256)) throw new OtaError("KEY_TYPE", "decryptionKey: an EC key of another curve than P-256");
  }
  const d = new Uint8Array(32);
  const raw = der.subarray(priv.start, priv.end);
  if (raw.length > 32) throw new TypeError("ECPrivateKey: scalar longer than 32 bytes");
  d.set(raw, 32 - raw.length);
  return d;
}

/** The device key from a PEM private key (RSA-3072 or P-256). Throws KEY_FORMAT, KEY_TYPE. */
export function deviceKeyFromPem(pem: string): DeviceKey {
  const { label, der } = pemBody(pem);
  try {
    const top = readTlv(der, 0);
    if (top.tag !== 0x30 || top.end !== der.length) throw new TypeError("one SEQUENCE expected");
    if (label === "RSA PRIVATE KEY") return { scheme: "rsa3072", rsa: rsaFromPkcs1(der, top) };
    if (label === "EC PRIVATE KEY") return { scheme: "ecies-p256", d: ecFromSec1(der, top) };
    if (label !== "PRIVATE KEY") throw new OtaError("KEY_FORMAT", `decryptionKey: a PEM "${label}", not a private key`);
    const c = readChildren(der, top);
    const alg = c[1] && c[1].tag === 0x30 ? readChildren(der, c[1]) : [];
    const inner = c[2];
    if (!alg[0] || alg[0].tag !== 0x06 || !inner || inner.tag !== 0x04) throw new TypeError("PrivateKeyInfo expected");
    const key = readTlv(der, inner.start, inner.end);
    if (key.tag !== 0x30 || key.end !== inner.end) throw new TypeError("PrivateKeyInfo: one SEQUENCE expected inside");
    if (contentEquals(der, alg[0], OID_RSA)) return { scheme: "rsa3072", rsa: rsaFromPkcs1(der, key) };
    if (contentEquals(der, alg[0], OID_EC)) {
      const curve = alg[1];
      if (!curve || curve.tag !== 0x06 || !contentEquals(der, curve, OID_P256)) throw new OtaError("KEY_TYPE", "decryptionKey: an EC key of another curve than P-256");
      return { scheme: "ecies-p256", d: ecFromSec1(der, key) };
    }
    throw new OtaError("KEY_TYPE", "decryptionKey: neither an RSA nor an EC key");
  } catch (e) {
    if (e instanceof OtaError) throw e;
    throw new OtaError("KEY_FORMAT", `decryptionKey: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The device key from the configuration: `decryptionKey` (PEM) or `decryptionHmacKey` (64 hex
 * digits, the eFuse HMAC key of esp_enc_img_gen.py --generate_ecc_key). undefined without either.
 * Throws KEY_FORMAT, KEY_TYPE.
 */
export function deviceKeyOf(config: { decryptionKey?: string; decryptionHmacKey?: string }, crypto: CryptoPort): DeviceKey | undefined {
  if (config.decryptionKey !== undefined) return deviceKeyFromPem(config.decryptionKey);
  if (config.decryptionHmacKey === undefined) return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(config.decryptionHmacKey)) throw new OtaError("KEY_FORMAT", "decryptionHmacKey: 64 hex digits (the 32-byte eFuse HMAC key)");
  return { scheme: "ecies-p256", d: eccScalarFromHmacKey(crypto, fromHex(config.decryptionHmacKey)) };
}

/**
 * The GCM key of a file's header, opened with the device key. Throws ENC_KEY (an RSA block that
 * is not this key's, a header point that is not on P-256); an ECIES file for another key gives
 * a key that only the tag refuses (ENC_TAG), as with the component.
 */
export function openGcmKey(header: EncHeader, key: DeviceKey, crypto: CryptoPort, cipher: EncCipherPort): Uint8Array {
  const field = header.keyField;
  if (key.scheme === "rsa3072") {
    let em: Uint8Array;
    try {
      em = cipher.rsaPrivateRaw(key.rsa, field);
    } catch (e) {
      throw new OtaError("ENC_KEY", `RSA-3072 unwrap failed (${e instanceof Error ? e.message : String(e)})`);
    }
    return unwrapPkcs1v15Key(em);
  }
  const point = field.subarray(0, ENC_ECC_POINT_SIZE);
  if (!isP256Point(point)) throw new OtaError("ENC_KEY", "the header's ephemeral key is not a P-256 point: not an ECIES file for this device");
  const x = cipher.ecdhP256(key.d, point);
  return eciesGcmKey(crypto, x, field.subarray(ENC_ECC_POINT_SIZE, ENC_ECC_POINT_SIZE + ENC_KDF_SALT_SIZE));
}
