/*
 * The wire between the XS worker and Node: shared by both sides (XS-safe, no Node API).
 *
 * Request (XS -> Node, through the worker's synchronous issueCommand, like a native host
 * function on the chip): a 16-byte header [op u8, 0, 0, 0, a u32, b u32, c u32] (little-endian)
 * and a tail. Bulk bytes (flash, SHA-256 input) travel raw in the tail, never as JSON.
 * Reply: [status u8] + tail; status OK, or ERROR with a JSON tail {name, code?, message, detail?}
 * so the guest rethrows the same kind of error (OtaError with its code, TypeError, RangeError).
 *
 * Event (Node -> XS, delivered one at a time with worker.command(); promise jobs settle before
 * it returns): the same 16-byte header with an event kind, and a tail.
 */

export const HEADER = 16;

export const Op = {
  FLASH_OPEN: 1,
  FLASH_READ: 2,
  FLASH_WRITE: 3,
  FLASH_ERASE: 4,
  FLASH_SLOTS: 5,
  STORE_GET: 10,
  STORE_SET: 11,
  STORE_DELETE: 12,
  STORE_KEYS: 13,
  HTTP_REQUEST: 20,
  HTTP_CLOSE: 21,
  SHA_NEW: 30,
  SHA_WRITE: 31,
  SHA_CLOSE: 32,
  SHA_RESET: 33,
  SHA_DIGEST: 36,
  ECDSA_VERIFY: 34,
  RSA_VERIFY: 35,
  RSA_PRIVATE: 37,
  ECDH_P256: 38,
  GCM_NEW: 80,
  GCM_UPDATE: 81,
  GCM_REPLAY: 82,
  GCM_FINISH: 83,
  MQTT_CONNECT: 40,
  MQTT_PUBLISH: 41,
  MQTT_SUBSCRIBE: 42,
  MQTT_CLOSE: 43,
  CLOCK_NOW: 50,
  CLOCK_WALL: 51,
  TIMER_SET: 52,
  TIMER_CLEAR: 53,
  SYS_RESTART: 60,
  SYS_INFO: 61,
  SYS_LOG: 66,
  PANIC: 70,
} as const;

export const Ev = {
  TIMER: 1,
  HTTP_STATUS: 2,
  HTTP_HEADER: 3,
  HTTP_HEADERS_COMPLETE: 4,
  HTTP_DATA: 5,
  HTTP_COMPLETE: 6,
  HTTP_ERROR: 7,
  MQTT_READY: 10,
  MQTT_MESSAGE: 11,
  MQTT_CLOSE: 12,
  MQTT_PUBLISHED: 13,
  /** Test/bench probes: facts about the machine, a full GC before a meter reading. */
  PROBE: 20,
  GC: 21,
} as const;

export const STATUS_OK = 0;
export const STATUS_ERROR = 1;

/** StoreValue tags. */
export const Val = { UNDEFINED: 0, STRING: 1, NUMBER: 2, TRUE: 3, FALSE: 4, BYTES: 5 } as const;

/** MQTT publish flags in header field b. */
export const PUB_RETAIN = 2;
export const PUB_BINARY = 4;

export interface WireError {
  name: string;
  message: string;
  code?: string;
  detail?: string;
}
