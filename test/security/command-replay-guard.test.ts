/*
 * Found by the fuzz (test/security/fuzz.test.ts, seed 0x29f0, input 2): a signed command delivered
 * under another name ({"cmd": "install", "envelope": <signed cancel>}) was refused, but only after
 * its `issued` was recorded as the replay guard, so the real cancel that followed was refused as a
 * replay. Anyone who sees a command on the broker could suppress it that way. A refused message
 * now leaves the guard where it was.
 */
import { describe, it, expect } from "vitest";
import { nodeCrypto } from "../../backend/crypto";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { controlMessage, signControl } from "../../backend/fleet/control";
import { decodeCommand } from "../../modules/commands";
import { verifyControl } from "../../modules/control";
import { DOMAINS } from "../../modules/nvs-domains";
import { OtaError } from "../../modules/errors";
import { utf8Encode } from "../../modules/bytes";
import { memoryStore } from "../xs/helpers";

const key = generateKey("ecdsa-p256");
const keys = [trustedKeyOf(key)];
const id = "aa0000000001";

describe("a refused command never uses up the replay guard", () => {
  it("a signed cancel delivered first as 'install' is refused, and the real cancel still goes through", () => {
    const store = memoryStore();
    store.set(DOMAINS.control, "issued", "1000");
    const cancel = JSON.parse(controlMessage(key, "cancel", id, 2000)) as { envelope: string };
    const renamed = decodeCommand(utf8Encode(JSON.stringify({ cmd: "install", envelope: cancel.envelope })), keys, nodeCrypto, id, store);
    expect(renamed).toMatchObject({ kind: "invalid" });
    expect(renamed.kind === "invalid" && renamed.detail).toMatch(/cmd install: ANNOUNCE_INVALID \(control: the envelope signs cancel, not install\)/);
    expect(store.get(DOMAINS.control, "issued")).toBe("1000");
    expect(decodeCommand(utf8Encode(controlMessage(key, "cancel", id, 2000)), keys, nodeCrypto, id, store)).toEqual({ kind: "control", cmd: "cancel" });
    expect(store.get(DOMAINS.control, "issued")).toBe("2000");
  });

  it("verifyControl with an expected command: another one is ANNOUNCE_INVALID and nothing is written", () => {
    const store = memoryStore();
    const env = signControl(key, "pause", id, 5000);
    let code = "";
    try {
      verifyControl(env, keys, nodeCrypto, id, store, "check");
    } catch (e) {
      code = (e as OtaError).code;
    }
    expect(code).toBe("ANNOUNCE_INVALID");
    expect(store.get(DOMAINS.control, "issued")).toBeUndefined();
    expect(verifyControl(env, keys, nodeCrypto, id, store, "pause").issued).toBe(5000);
    expect(store.get(DOMAINS.control, "issued")).toBe("5000");
  });
});
