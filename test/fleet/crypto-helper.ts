/* A CryptoPort for fleet tests: SIGN's backend/crypto.ts when present, else SHA-256 only. */
import { createHash } from "node:crypto";
import type { CryptoPort } from "../../modules/ports";

export const sha256Crypto: CryptoPort = {
  sha256() {
    let h = createHash("sha256");
    return {
      write(data: Uint8Array) {
        h.update(data);
      },
      close() {
        const d = new Uint8Array(h.digest());
        h = createHash("sha256");
        return d;
      },
      digest() {
        return new Uint8Array(h.copy().digest());
      },
      reset() {
        h = createHash("sha256");
      },
    };
  },
  verifyEcdsaP256() {
    throw new Error("not in this test");
  },
  verifyRsaPkcs1Sha256() {
    throw new Error("not in this test");
  },
};
