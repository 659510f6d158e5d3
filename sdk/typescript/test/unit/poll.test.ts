// The long-polling transport against a fetch the test answers for the service.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NotificationClient } from "../../src/client.js";
import { MockConnectivity, notification, until } from "./mock.js";

test("a poll connection closed while the application holds a notification ends at once", async () => {
  let polls = 0;
  const fetch = (async () => {
    polls++;
    const body = { notifications: polls === 1 ? [notification("a", 7)] : [], next: 7 };
    return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
  }) as typeof globalThis.fetch;
  const connectivity = new MockConnectivity();
  // Manual acknowledgement, never given: the next poll waits for it.
  const client = new NotificationClient({ url: "http://notify.test", token: "t", transports: ["poll"], ack: "manual", fetch }, { connectivity });
  const received: string[] = [];
  client.on("notification", (n) => void received.push(n.id));
  await until("a notification", () => received.length === 1);
  assert.equal(client.state.state, "connected");
  connectivity.set(false);
  await until("offline", () => client.state.state === "offline");
  assert.equal(polls, 1, "no poll while the application holds one");
  client.close();
});
