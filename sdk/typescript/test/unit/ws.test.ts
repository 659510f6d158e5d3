// The WebSocket transport against a socket the test plays the service on.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NotificationClient } from "../../src/client.js";
import type { WebSocketConstructor } from "../../src/types.js";
import { MockConnectivity, notification, until } from "./mock.js";

/** The last socket made; the test opens it, sends frames and reads what the client sent. */
class FakeSocket {
  static last: FakeSocket | undefined;
  readyState = 0;
  readonly sent: { type: string; through?: number; ids?: string[] }[] = [];
  onopen: (() => void) | undefined;
  onmessage: ((event: { data: string }) => void) | undefined;
  onclose: ((event: { code: number }) => void) | undefined;

  constructor(readonly url: string) {
    FakeSocket.last = this;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1000 });
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }

  frame(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

test("an acknowledgement answered `unavailable` is not taken: it goes again, and only its `acked` confirms it", async () => {
  const client = new NotificationClient(
    { url: "http://notify.test", token: "t", transports: ["ws"], WebSocket: FakeSocket as unknown as WebSocketConstructor },
    { connectivity: new MockConnectivity() },
  );
  const acked: string[] = [];
  client.on("acked", ({ ids }) => void acked.push(...ids));
  client.on("notification", () => {});
  await until("a socket", () => FakeSocket.last !== undefined);
  const socket = FakeSocket.last!;
  socket.open();
  socket.frame({ type: "notification", ...notification("a", 7) });
  await until("an ack frame", () => socket.sent.length === 1);
  assert.deepEqual(socket.sent[0], { type: "ack", through: 7 });
  // The inbox is unreachable: the service takes nothing of it.
  socket.frame({ type: "error", code: "unavailable", message: "the inbox is unreachable; acknowledge again later" });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(acked, [], "not confirmed");
  assert.equal(client.position, undefined, "a later connection resumes before it");
  await until("the ack sent again", () => socket.sent.length === 2, 2_000);
  assert.deepEqual(socket.sent[1], { type: "ack", through: 7 });
  socket.frame({ type: "acked", ids: [], through: 7 });
  await until("confirmed", () => acked.length === 1);
  assert.deepEqual(acked, ["a"]);
  assert.equal(client.position, 7);
  client.close();
});

test("an ack frame refused for good is dropped, with one error event naming it and why", async () => {
  const client = new NotificationClient(
    { url: "http://notify.test", token: "t", transports: ["ws"], ack: "manual", WebSocket: FakeSocket as unknown as WebSocketConstructor },
    { connectivity: new MockConnectivity() },
  );
  const errors: Error[] = [];
  client.on("error", (e) => void errors.push(e));
  client.on("notification", () => {});
  FakeSocket.last = undefined;
  await until("a socket", () => FakeSocket.last !== undefined);
  const socket = FakeSocket.last!;
  socket.open();
  socket.frame({ type: "notification", ...notification("a", 7) });
  socket.frame({ type: "notification", ...notification("b", 8) });
  socket.frame({ type: "notification", ...notification("c", 9) });
  client.ack("b");
  await until("an ack frame", () => socket.sent.length === 1);
  assert.deepEqual(socket.sent[0], { type: "ack", ids: ["b"] });
  socket.frame({ type: "error", code: "invalid_id", message: "an id is not 1 to 128 characters" });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /1 id \(b\)/);
  assert.match(errors[0]!.message, /invalid_id/);
  // The next acknowledgement goes without it.
  client.ack("c");
  await until("a second ack frame", () => socket.sent.length === 2);
  assert.deepEqual(socket.sent[1], { type: "ack", ids: ["c"] });
  socket.frame({ type: "acked", ids: ["c"] });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(socket.sent.length, 2, "b is not sent again on this connection");
  assert.equal(errors.length, 1);
  client.close();
});
