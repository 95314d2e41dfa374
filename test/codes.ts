import { OtaError } from "../modules/errors";

/**
 * The OtaError code `f` throws, or "no error" when it returns. Anything else thrown is a
 * crash, not a refusal: it is rethrown so the test fails with it.
 */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof OtaError) return e.code;
    throw e;
  }
  return "no error";
}
