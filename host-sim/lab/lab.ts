/*
 * A lab for end-to-end runs of simulated devices: a test CA and server certificate (made at
 * run time), one real HTTPS update host on loopback sharing one VirtualClock with the devices
 * (its "drip" fault ticks on virtual time), a trusted signing key and a rogue one, cached test
 * images, and helpers to publish a release and make a device.
 */
import { createHash } from "node:crypto";
import type { Engine } from "../engines/engine";
import type { Fault, UpdateHost } from "../../backend/update-host";
import { startUpdateHost } from "../../backend/update-host";
import { startWireHost, type WireHost } from "./wire-host";
import { makeCa, makeIntermediateCa, makeServerCert, pemCertificates, type CaBundle } from "../../backend/release/pki";
import { generateKey, keyConfigOf, type SigningKey } from "../../backend/release/keys";
import { createManifest, type ManifestInput } from "../../backend/release/manifest-tool";
import { signImage } from "../../backend/release/espsecure";
import { encryptImage, schemeOfFile } from "../../backend/release/encrypted-img";
import { VirtualClock } from "../../backend/clock";
import { NodeHttp } from "../engines/ports/http";
import { SimDevice, type SimDeviceOptions } from "../chip/device";
import { SimChip, type Geometry } from "../chip/chip";
import { buildImage, type Behavior, type ImageSpec } from "../chip/image-builder";

export type { ImageSpec } from "../chip/image-builder";

export const PROJECT = "xsota-demo";
export const FACTORY: ImageSpec = { version: "1.0.0", secureVersion: 1 };

export interface ReleaseSpec {
  image: ImageSpec;
  /** Manifest fields to override (version, secureVersion... default from the image). */
  manifest?: Partial<ManifestInput>;
  /** Who signs the manifest: the trusted key (default), a rogue key, or nobody valid (a flipped byte). */
  signer?: "trusted" | "rogue" | "corrupt";
  /** Append an espsecure v1 signature block to the image (with the trusted key, or a rogue one). */
  imageSignature?: "trusted" | "rogue";
  /** Change the image before the manifest is made from it (a bad build, signed as such). */
  transform?: (image: Uint8Array) => Uint8Array;
  /** Change what the host serves after the manifest was made from the real image. */
  serve?: (image: Uint8Array) => Uint8Array;
  /** These bytes as the (plain) image instead of the one built from `image` (e.g. a vector made elsewhere). */
  bytes?: Uint8Array;
  /**
   * Publish an esp_encrypted_img file of the image (issue 31): encrypted here for `key` (a public or
   * private PEM), or `file` as made elsewhere (Espressif's tool); `transform` changes the file
   * before the manifest is made from it (a bad file, signed as such). The manifest's url/size/sha256
   * name the file, its `encryption` the plain image (plainSize = the file's size - 512).
   */
  encrypt?: { key?: string; file?: Uint8Array; transform?: (file: Uint8Array) => Uint8Array };
}

export interface Published {
  manifestUrl: string;
  imageUrl: string;
  image: Uint8Array;
  envelope: Uint8Array;
}

export class Lab {
  readonly clock = new VirtualClock();
  private images = new Map<string, Uint8Array>();
  private runs = 0;
  private constructor(
    readonly ca: CaBundle,
    readonly host: UpdateHost,
    readonly key: SigningKey,
    readonly rogue: SigningKey,
    /** A second CA the host's certificate is NOT from (wrong-certificate tests). */
    readonly otherCa: CaBundle,
    /** A byte-controlled host (wire-host.ts) with the same certificate: scripted responses. */
    readonly wire: WireHost,
    /** A byte-controlled host whose certificate is from `otherCa` (redirects to a host the pinned CA does not cover). */
    readonly wireOther: WireHost,
  ) {}

  /** `key`: the release key manifests are signed with (default a fresh ECDSA P-256 key; RSA-2048 works too). */
  static async create(options: { key?: SigningKey; /** Tests: the CA's or the leaf's signature is one Moddable's TLS misreads (release/pki.ts moddableTlsDefect). */ moddableDefect?: "ca" | "leaf";
    /** Tests: the hosts send a leaf the other CA signed, followed by the pinned CA's own certificate (a man in the middle's chain). */
    forgedLeaf?: boolean;
    /** Tests: the hosts' leaf is signed by an intermediate CA the pinned one signed, and sent with it (leaf + intermediate). */
    intermediate?: boolean;
    /** Tests: the hosts' leaf is signed by another leaf (basicConstraints cA FALSE) the pinned CA signed, and sent with it. */
    leafIssued?: boolean } = {}): Promise<Lab> {
    const ca = await makeCa(undefined, undefined, { moddableDefect: options.moddableDefect === "ca", ...(options.intermediate ? { pathLength: 1 } : {}) });
    const otherCa = await makeCa(undefined, "some other CA");
    let cert = await makeServerCert(ca, { hosts: ["127.0.0.1", "localhost"], moddableDefect: options.moddableDefect === "leaf" });
    if (options.intermediate) cert = await makeServerCert(await makeIntermediateCa(ca), { hosts: ["127.0.0.1", "localhost"] });
    if (options.leafIssued) {
      const issuer = await makeServerCert(ca, { hosts: ["issuer.example"] });
      cert = await makeServerCert({ caCertPem: pemCertificates(issuer.certPem)[0]!, caKeyPem: issuer.keyPem }, { hosts: ["127.0.0.1", "localhost"] });
    }
    if (options.forgedLeaf) {
      const forged = await makeServerCert(otherCa, { hosts: ["127.0.0.1", "localhost"] });
      cert = { certPem: pemCertificates(forged.certPem)[0]! + ca.caCertPem, keyPem: forged.keyPem };
    }
    const wire = await startWireHost({ cert: cert.certPem, key: cert.keyPem });
    const otherCert = await makeServerCert(otherCa, { hosts: ["127.0.0.1", "localhost"] });
    const wireOther = await startWireHost({ cert: otherCert.certPem, key: otherCert.keyPem });
    const lab = new Lab(ca, undefined as unknown as UpdateHost, options.key ?? generateKey("ecdsa-p256"), generateKey("ecdsa-p256"), otherCa, wire, wireOther);
    const host = await startUpdateHost({ cert: cert.certPem, key: cert.keyPem, clock: lab.clock, routes: {} });
    wire.vars = { lab: host.url, other: wireOther.url };
    (lab as { host: UpdateHost }).host = host;
    return lab;
  }

  /** A new run number (scenario runs publish under /<name>/<run>/). */
  nextRun(): number {
    return ++this.runs;
  }

  get url(): string {
    return this.host.url;
  }

  /** A test image (deterministic bytes for a spec; cached). */
  image(spec: ImageSpec): Uint8Array {
    const full = { project: PROJECT, size: 64 * 1024, behavior: "healthy" as Behavior, secureVersion: 1, chipId: 0, ...spec };
    const k = JSON.stringify(full);
    const hit = this.images.get(k);
    if (hit) return hit;
    const img: Uint8Array = buildImage(full);
    this.images.set(k, img);
    return img;
  }

  /** Publish a release under /<dir>/: the image and its signed manifest. */
  publish(dir: string, spec: ReleaseSpec): Published {
    let image = spec.bytes ?? this.image(spec.image);
    if (spec.transform) image = spec.transform(image);
    if (spec.imageSignature) {
      const k = `sig:${spec.imageSignature}:${JSON.stringify(spec.image)}`;
      const signed = this.images.get(k) ?? signImage(image, [spec.imageSignature === "trusted" ? this.key : this.rogue], "v1");
      this.images.set(k, signed);
      image = signed;
    }
    const imagePath = `/${dir}/fw-${spec.image.version}.bin`;
    const manifestPath = `/${dir}/release.json`;
    const fields: ManifestInput = {
      product: PROJECT,
      version: spec.image.version,
      secureVersion: spec.image.secureVersion ?? 1,
      url: `${this.url}${imagePath}`,
      ...spec.manifest,
    };
    if (spec.encrypt) {
      const e = spec.encrypt;
      let file = e.file ?? encryptImage(image, { publicKey: e.key! });
      const scheme = schemeOfFile(file);
      if (e.transform) file = e.transform(file);
      fields.encryption ??= { format: "esp_encrypted_img", scheme, plainSize: file.length - 512, plainSha256: createHash("sha256").update(image).digest("hex") };
      image = file;
    }
    // size/sha256 from the image unless the spec lies about them on purpose.
    if (fields.size === undefined && fields.sha256 === undefined) fields.image = image;
    else {
      fields.size ??= image.length;
      fields.sha256 ??= createHash("sha256").update(image).digest("hex");
    }
    let envelope = createManifest({ ...fields, keys: [spec.signer === "rogue" ? this.rogue : this.key] });
    if (spec.signer === "corrupt") envelope = corruptSignature(envelope);
    this.host.setRoute(imagePath, spec.serve ? spec.serve(image) : image);
    this.host.setRoute(manifestPath, envelope);
    return { manifestUrl: `${this.url}${manifestPath}`, imageUrl: `${this.url}${imagePath}`, image, envelope };
  }

  setFault(path: string, fault: Fault | Fault[] | null): void {
    this.host.setFault(path, fault);
  }

  /** The device configuration for a manifest URL (small limits so faults resolve in little virtual time). */
  config(manifestUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      product: PROJECT,
      manifestUrl,
      trustedKeys: [keyConfigOf(this.key)],
      requireImageSignature: false,
      checkIntervalMs: 0,
      retry: { baseMs: 1000, maxMs: 8000, maxAttempts: 4 },
      download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 16 * 1024 },
      diagnostics: { windowMs: 30_000, heapFloor: 16 * 1024, checkTimeoutMs: 10_000 },
      ...overrides,
    };
  }

  /** A blank chip with `factory` in app0 (otadata erased: the bootloader boots ota_0). */
  chip(factory: ImageSpec = FACTORY, geometry?: Geometry): SimChip {
    const chip = SimChip.create(geometry ? { geometry } : {});
    writeImage(chip, "app0", this.image(factory));
    chip.flash.resetStats();
    return chip;
  }

  device(engine: Engine, chip: SimChip, config: unknown, options: Partial<SimDeviceOptions> = {}): SimDevice {
    const http = options.http ?? new NodeHttp({ ca: this.ca.caCertPem, clock: this.clock });
    return new SimDevice({ chip, engine, http, config, deviceId: "240ac4000001", hardware: "esp32-rev3", clock: this.clock, ...options });
  }

  async close(): Promise<void> {
    await this.wire.close();
    await this.wireOther.close();
    await this.host.close();
  }
}

/** Write an image into an app partition the way a serial flasher would (erase, program). */
export function writeImage(chip: SimChip, label: string, image: Uint8Array): void {
  const part = chip.partition(label);
  const bs = part.blockSize;
  for (let b = 0; b * bs < image.length; b++) part.eraseBlock(b);
  part.write(0, image);
}

function corruptSignature(envelope: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(envelope);
  const env = JSON.parse(text) as { payload: string; signatures: { sig: string }[] };
  const sig = env.signatures[0]!;
  const bytes = Buffer.from(sig.sig, "base64");
  bytes[10] ^= 0x01;
  sig.sig = bytes.toString("base64");
  return new TextEncoder().encode(JSON.stringify(env, null, 1) + "\n");
}
