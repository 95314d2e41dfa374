/*
 * Host modules of the Moddable SDK that no typings declare (neither @moddable/typings 5.6 on npm
 * nor the SDK's own typings/ at 8.2.3). Used by `tsc -p tsconfig.device.json` and, through
 * manifest.json's typescript.tsconfig types, by mcconfig's own tsc run.
 * Shapes are read from the SDK source, file named per module.
 */

// modules/crypt/etc/x509.js: decode() -> {tbs, algo, sig, spki...}; decodeSPKI(cert) -> the key
// ssl_cert.js's _verify takes (the shapes are the SDK's own, opaque here)
declare module "x509" {
  const X509: {
    decode(cert: ArrayBuffer | Uint8Array): unknown;
    decodeSPKI(cert: ArrayBuffer | Uint8Array): unknown;
    /** The extension's value (the OCTET STRING's contents) for the OID's arcs, or undefined (x509.c xs_x509_decodeExtension). */
    decodeExtension(cert: ArrayBuffer | Uint8Array, oid: number[]): ArrayBuffer | undefined;
    /** decode(cert).tbs -> its fields; validity from/to in ms since the epoch. */
    decodeTBS(tbs: unknown): { validity: { from: number; to: number } };
    /** subjectAltName entries (tag 2 dNSName as a string, tag 7 iPAddress as bytes...), or undefined without the extension. */
    decodeSAN(cert: ArrayBuffer | Uint8Array): { tag: number; value: string | ArrayBuffer }[] | undefined;
  };
  export default X509;
}

// modules/crypt/arith/ecp.js
declare module "ecp" {
  export default class ECPoint {
    constructor(x: bigint, y: bigint, identity?: boolean);
    readonly X: bigint;
    readonly Y: bigint;
    isZero(): boolean;
    /** SEC1 uncompressed point (0x04 || X || Y); throws "unsupported format" otherwise. */
    static fromOctetString(os: Uint8Array): ECPoint;
  }
}

// modules/crypt/etc/curve.js: only secp256r1 and secp384r1 are known
declare module "curve" {
  export default class Curve {
    constructor(name: "secp256r1" | "secp384r1");
    /** d * P (P = 0x04 || X || Y, the generator without it) as 0x04 || X || Y; no on-curve check of P. */
    dh(d: ArrayBuffer, P?: ArrayBuffer): ArrayBuffer;
    readonly orderSize: number;
    readonly n: bigint;
  }
}

// modules/crypt/etc/ecdsa.js: verify(H, sig, asn1) with H the digest, sig raw r||s or DER (asn1 = true)
declare module "ecdsa" {
  import type ECPoint from "ecp";
  import type Curve from "curve";
  export default class ECDSA {
    constructor(key: ECPoint, curve: Curve);
    verify(H: ArrayBuffer, sig: ArrayBuffer, asn1?: boolean): boolean;
  }
}

// modules/crypt/digest/crypt.js: the ciphers and GHASH the SDK's typings/crypt.d.ts leaves out
// (modCrypt.c: Mode's data and result take any buffer view; BlockCipher's and GHASH's arguments are ArrayBuffers)
declare module "crypt" {
  export class BlockCipher {
    constructor(cipher: "AES", key: ArrayBuffer);
    encrypt(data: ArrayBuffer, result?: ArrayBuffer): ArrayBuffer;
  }
  export class Mode {
    constructor(mode: "CTR", cipher: BlockCipher, iv?: ArrayBuffer);
    decrypt(data: ArrayBufferView, result?: ArrayBufferView): ArrayBuffer;
    setIV(iv: ArrayBuffer): void;
  }
  export class GHASH {
    constructor(h: ArrayBuffer, aad?: ArrayBuffer);
    write(data: ArrayBufferView | ArrayBuffer): void;
    close(): ArrayBuffer;
  }
}

// modules/crypt/etc/rsa.js: public-key operation when no CRT parameters are given; the private one
// with CRT when they are (rsa.js: e = d, then p, q, dp, dq, C2 = q^-1 mod p)
declare module "rsa" {
  export default class RSA {
    constructor(e: bigint, m: bigint, p?: bigint, q?: bigint, dp?: bigint, dq?: bigint, C2?: bigint);
    process(c: bigint): bigint;
    readonly modulusSize: number;
  }
}

// modules/crypt/etc/pkcs1_5.js: verify() does not check the DigestInfo OID nor the padding length
declare module "pkcs1_5" {
  export default class PKCS1_5 {
    constructor(key: { modulus: bigint; exponent: bigint }, priv: boolean, oid?: number[]);
    verify(H: ArrayBuffer, sig: ArrayBuffer): boolean;
    readonly modulusSize: number;
  }
}

// modules/network/mqtt/mqtt.js (classic client, MQTT 3.1.1, clean session; PUBACK is parsed but not reported)
declare module "mqtt" {
  export interface MqttClientOptions {
    host: string;
    port?: number;
    id?: string;
    user?: string;
    password?: string;
    will?: { topic: string; message: string | ArrayBuffer; retain?: boolean; quality?: number };
    /** Keep-alive in ms (sent rounded up to seconds). */
    timeout?: number;
    path?: string;
    Socket?: unknown;
    secure?: Record<string, unknown>;
  }
  export default class Client {
    constructor(options: MqttClientOptions);
    /** Last packet id used by publish/subscribe (incremented before each). */
    packet: number;
    onReady?: () => void;
    onMessage?: (topic: string, payload: ArrayBuffer) => void;
    onClose?: () => void;
    publish(topic: string, data: string | ArrayBuffer, flags?: { quality?: number; retain?: boolean; duplicate?: boolean }): void;
    subscribe(topic: string): void;
    unsubscribe(topic: string): void;
    close(immediate?: boolean): void;
    /** Called with each socket read; overridable by a subclass. */
    received(buffer: ArrayBuffer): void;
  }
}

// build/devices/esp32/modules/ota/ota.js: esp_ota_begin/write/end + set_boot_partition; no reboot
declare module "ota" {
  export default class OTA {
    constructor(options?: unknown);
    write(data: ArrayBuffer | Uint8Array): void;
    cancel(): void;
    complete(): void;
  }
}

// build/devices/esp32/modules/resetReason/resetReason.js: esp_reset_reason() as a number and a label
declare module "resetReason" {
  export default function getResetReason(): { reason: number; string: string };
}

// modules/io/system/system.js (ECMA-419 host): exports nothing, installs globalThis.System and
// globalThis.device (typed by the typings' global.d.ts). Not used by src/: it drags in
// embedded:provider/builtin; restart goes through src/native instead.
declare module "system" {}
