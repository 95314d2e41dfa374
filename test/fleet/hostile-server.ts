/*
 * An MQTT server on loopback that a test scripts to misbehave (test/fleet/hostile-broker.test.ts,
 * test/moddable/hostile-broker.test.ts): it accepts the session and the subscriptions like a
 * broker, acknowledges QoS 1 publishes, then does what `afterSubscribe` says.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import * as mqttPacket from "mqtt-packet";

/** An MQTT server on loopback: CONNACK, SUBACK, then `afterSubscribe(socket, n)` once both subscriptions of the n-th connection are in. */
export async function hostileServer(afterSubscribe: (socket: Socket, connection: number) => void): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    const connection = ++connections;
    let subscriptions = 0;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const send = (p: object) => socket.write(mqttPacket.generate(p as mqttPacket.Packet));
    parser.on("packet", (p: mqttPacket.Packet) => {
      if (p.cmd === "connect") send({ cmd: "connack", returnCode: 0, sessionPresent: false });
      else if (p.cmd === "subscribe") {
        send({ cmd: "suback", messageId: p.messageId, granted: p.subscriptions.map(() => 0) });
        if (++subscriptions === 2) afterSubscribe(socket, connection);
      } else if (p.cmd === "publish" && p.qos === 1) send({ cmd: "puback", messageId: p.messageId });
    });
    socket.on("data", (d) => parser.parse(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

/** A PUBLISH header claiming `length` bytes of remaining length, and the first bytes of its topic. */
export function claimedPublish(length: number): Buffer {
  const header = [0x30];
  let n = length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    header.push(b);
  } while (n);
  return Buffer.from([...header, 0x00, 0x0f, ...Buffer.from("devices/x/cmd")]);
}
