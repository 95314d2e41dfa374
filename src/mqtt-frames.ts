/*
 * Finds PUBACK packet ids in the byte stream a classic Moddable MQTT client receives.
 * modules/network/mqtt/mqtt.js parses PUBACK (0x40) and drops it ("not dispatched"), so the
 * binding watches the same bytes: fixed header, remaining length (1-4 bytes), then the body,
 * across any split of the stream into reads. Pure, so it is tested under Node in test/device.
 * With `maxLength` it is also the guard against a hostile broker: the remaining length of every
 * packet is known here before mqtt.js allocates a buffer of that size (a PUBLISH claiming 256 MB
 * would abort XS, which restarts the chip), so a packet over the bound throws first and the
 * binding ends the connection instead (backend/mqtt/client.ts applies the same bound on Node, to
 * the length mqtt-packet's parser reads).
 */

export class PubackScanner {
  #state: "header" | "length" | "body" = "header";
  #type = 0;
  #length = 0;
  #shift = 0;
  #seen = 0;
  #id = 0;

  constructor(
    private readonly onPuback: (id: number) => void,
    private readonly maxLength = Infinity,
  ) {}

  /**
   * Feed the next bytes exactly as read from the socket. Throws RangeError on a malformed length
   * and on a packet whose remaining length is over maxLength (before any of its body is read).
   */
  scan(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i]!;
      if (this.#state === "header") {
        this.#type = b & 0xf0;
        this.#length = this.#shift = 0;
        this.#state = "length";
        i++;
      } else if (this.#state === "length") {
        if (this.#shift > 21) throw new RangeError("MQTT remaining length longer than 4 bytes");
        this.#length |= (b & 0x7f) << this.#shift;
        this.#shift += 7;
        i++;
        if (!(b & 0x80)) this.#startBody();
      } else {
        const take = Math.min(this.#length - this.#seen, bytes.length - i);
        if (this.#type === 0x40) {
          for (let k = 0; k < take && this.#seen + k < 2; k++) this.#id = (this.#id << 8) | bytes[i + k]!;
        }
        this.#seen += take;
        i += take;
        if (this.#seen === this.#length) this.#endBody();
      }
    }
  }

  #startBody(): void {
    if (this.#length > this.maxLength) throw new RangeError(`packet of ${this.#length} bytes (at most ${this.maxLength})`);
    this.#seen = this.#id = 0;
    this.#state = "body";
    if (this.#length === 0) this.#endBody();
  }

  #endBody(): void {
    this.#state = "header";
    if (this.#type === 0x40 && this.#length >= 2) this.onPuback(this.#id & 0xffff);
  }
}
