// The client's state machine over mocked transports.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotificationClient, type Internals } from "../../src/client.js";
import type { ClientOptions, ClientState, Notification } from "../../src/types.js";
import { MockConnectivity, MockTransport, notification, until } from "./mock.js";

interface Harness {
  client: NotificationClient;
  ws: MockTransport;
  sse: MockTransport;
  poll: MockTransport;
  states: ClientState[];
  received: Notification[];
  errors: Error[];
  connectivity: MockConnectivity;
}

function start(options: Partial<ClientOptions> = {}, internals: Internals = {}): Harness {
  const ws = new MockTransport();
  const sse = new MockTransport();
  const poll = new MockTransport();
  const connectivity = new MockConnectivity();
  const client = new NotificationClient(
    { url: "http://notify.test/", token: "t", backoff: { initialMs: 4, maxMs: 16 }, ...options },
    { transports: { ws: ws.factory, sse: sse.factory, poll: poll.factory }, connectivity, random: () => 1, ...internals },
  );
  const h: Harness = { client, ws, sse, poll, states: [], received: [], errors: [], connectivity };
  client.on("state", (s) => void h.states.push(s));
  client.on("error", (e) => void h.errors.push(e));
  client.on("notification", (n) => void h.received.push(n));
  return h;
}

const names = (h: Harness) => h.states.map((s) => (s.state === "connected" || s.state === "connecting" ? `${s.state}:${s.transport}` : s.state));

describe("receiving", () => {
  test("hands notifications over in order, each once, and acknowledges them cumulatively", async () => {
    const h = start();
    await until("a connection", () => h.ws.connections.length === 1);
    assert.equal(h.ws.last.link.after, undefined, "a new client resumes from nothing");
    assert.equal(h.ws.last.link.base, "http://notify.test", "the trailing slash is dropped");
    h.ws.last.deliver(notification("a", 10), notification("b", 20), notification("a", 10), notification("c", 30));
    await until("three handed over", () => h.received.length === 3);
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b", "c"]);
    await until("all acknowledged", () => h.ws.last.through === 30);
    assert.deepEqual(h.ws.last.ids, [], "in a row: no ids needed");
    assert.deepEqual(names(h).slice(0, 2), ["connecting:ws", "connected:ws"]);
    h.client.close();
    assert.equal(h.client.state.state, "closed");
  });

  test("acknowledges only once the handler resolves, one notification at a time", async () => {
    const h = start();
    const release: (() => void)[] = [];
    h.client.on("notification", () => new Promise<void>((resolve) => release.push(resolve)));
    await until("a connection", () => h.ws.connections.length === 1);
    h.ws.last.deliver(notification("a", 1), notification("b", 2));
    await until("a is handled", () => release.length === 1);
    assert.equal(h.received.length, 1, "b waits until a's handlers resolved");
    assert.equal(h.ws.last.sent.length, 0, "nothing acknowledged yet");
    release[0]!();
    await until("a acknowledged", () => h.ws.last.through === 1);
    await until("b is handled", () => release.length === 2);
    release[1]!();
    await until("b acknowledged", () => h.ws.last.through === 2);
    h.client.close();
  });

  test("with ack: manual, only ack(id) acknowledges; out of order by id", async () => {
    const h = start({ ack: "manual" });
    await until("a connection", () => h.ws.connections.length === 1);
    h.ws.last.deliver(notification("a", 1), notification("b", 2), notification("c", 3));
    await until("handed over", () => h.received.length === 3);
    assert.equal(h.ws.last.sent.length, 0);
    h.client.ack("b");
    await until("b by id", () => h.ws.last.ids.includes("b"));
    assert.equal(h.ws.last.through, undefined, "a is not done: no through");
    h.client.ack("a");
    await until("through b", () => h.ws.last.through === 2);
    h.client.close();
  });

  test("a handler that throws leaves its notification unacknowledged, and it is handed over again when it comes again", async () => {
    const h = start();
    let fail = true;
    h.client.on("notification", (n) => {
      if (n.id === "a" && fail) throw new Error("boom");
    });
    await until("a connection", () => h.ws.connections.length === 1);
    h.ws.last.deliver(notification("a", 1), notification("b", 2));
    await until("b acknowledged by id", () => h.ws.last.ids.includes("b"));
    assert.equal(h.ws.last.through, undefined, "a is not acknowledged");
    assert.match(h.errors[0]?.message ?? "", /boom/);
    fail = false;
    h.ws.last.end({ kind: "lost", reason: "ack timeout" });
    await until("reconnected", () => h.ws.connections.length === 2);
    assert.equal(h.ws.last.link.after, undefined, "resumes before a");
    h.ws.last.deliver(notification("a", 1), notification("b", 2));
    await until("a again, and everything through b", () => h.ws.last.through === 2);
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b", "a"]);
    h.client.close();
  });

  test("a handler that rejects is reported and holds back neither the notifications after it nor their acknowledgement", async () => {
    const h = start();
    const acked: string[] = [];
    h.client.on("acked", ({ ids }) => void acked.push(...ids));
    h.client.on("notification", async (n) => {
      if (n.id === "a") throw new Error("rejected");
    });
    await until("a connection", () => h.ws.connections.length === 1);
    const first = h.ws.last;
    first.deliver(notification("a", 1), notification("b", 2), notification("c", 3));
    await until("b and c acknowledged", () => first.ids.length === 2);
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b", "c"]);
    assert.equal(h.errors.length, 1);
    assert.match(h.errors[0]!.message, /rejected/);
    for (const batch of first.sent) first.link.confirmed(batch);
    assert.deepEqual(acked, ["b", "c"], "confirmed");
    assert.equal(h.client.position, undefined, "resumes before a");
    first.end({ kind: "lost", reason: "ack timeout" });
    await until("reconnected", () => h.ws.connections.length === 2);
    h.ws.last.deliver(notification("a", 1), notification("d", 4));
    await until("a failed again, d acknowledged", () => h.ws.last.ids.includes("d"));
    assert.equal(h.errors.length, 2, "each failure told");
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b", "c", "a", "d"]);
    h.client.close();
  });

  test("a notification that comes before any handler waits for one", async () => {
    const h = start();
    await until("a connection", () => h.ws.connections.length === 1);
    const client = new NotificationClient(
      { url: "http://x", token: "t" },
      { transports: { ws: h.ws.factory }, connectivity: h.connectivity },
    );
    await until("a second connection", () => h.ws.connections.length === 2);
    h.ws.last.deliver(notification("early", 1));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(h.ws.last.sent.length, 0, "not acknowledged without a handler");
    const got: string[] = [];
    client.on("notification", (n) => void got.push(n.id));
    await until("handed over", () => got.length === 1);
    await until("acknowledged", () => h.ws.last.through === 1);
    client.close();
    h.client.close();
  });
});

describe("reconnecting", () => {
  test("resumes after what was confirmed, and drops what comes again", async () => {
    const h = start();
    await until("a connection", () => h.ws.connections.length === 1);
    const first = h.ws.last;
    first.deliver(notification("a", 5), notification("b", 7));
    await until("acknowledged", () => first.through === 7);
    first.link.confirmed(first.sent.at(-1)!);
    assert.equal(h.client.position, 7);
    first.deliver(notification("c", 9));
    await until("c acknowledged", () => first.through === 9);
    // c's acknowledgement is lost with the connection.
    first.end({ kind: "lost", reason: "dropped" });
    await until("reconnected", () => h.ws.connections.length === 2);
    const second = h.ws.last;
    assert.equal(second.link.after, 7, "after the last confirmed position");
    second.deliver(notification("c", 9), notification("d", 11));
    await until("d handed over", () => h.received.length === 4);
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b", "c", "d"], "c once");
    await until("c acknowledged again", () => second.through === 11);
    const delays = h.states.filter((s) => s.state === "reconnecting");
    assert.equal(delays.length, 1);
    h.client.close();
  });

  test("waits with capped exponential backoff between failed attempts, and from the start once connected", async () => {
    const h = start();
    for (let attempt = 1; attempt <= 4; attempt++) {
      await until(`attempt ${attempt}`, () => h.ws.connections.length === attempt);
      h.ws.last.end({ kind: "lost", reason: "refused connection" });
    }
    await until("attempt 5", () => h.ws.connections.length === 5);
    const delays = h.states.flatMap((s) => (s.state === "reconnecting" ? [s.delayMs] : []));
    assert.deepEqual(delays, [4, 8, 16, 16], "doubling from 4 ms, capped at 16 ms");
    h.ws.last.deliver();
    h.ws.last.end({ kind: "lost", reason: "dropped" });
    await until("attempt 6", () => h.ws.connections.length === 6);
    const last = h.states.filter((s) => s.state === "reconnecting").at(-1);
    assert.deepEqual(last, { state: "reconnecting", delayMs: 4, reason: "dropped" }, "a connection that was up starts over");
    h.client.close();
  });

  test("jitter: each wait is between half of the delay and all of it", async () => {
    const h = start({}, { random: () => 0 });
    await until("a connection", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "lost", reason: "x" });
    await until("a second", () => h.ws.connections.length === 2);
    assert.deepEqual(h.states.find((s) => s.state === "reconnecting"), { state: "reconnecting", delayMs: 2, reason: "x" });
    h.client.close();
  });

  test("honours Retry-After", async () => {
    const h = start();
    await until("a connection", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "lost", reason: "503", retryAfterMs: 50 });
    await until("reconnecting", () => h.client.state.state === "reconnecting");
    assert.equal((h.client.state as { delayMs: number }).delayMs, 50);
    h.client.close();
  });
});

describe("transports", () => {
  test("one that cannot connect, twice in a row, falls back to the next at once; the better one is tried again later", async () => {
    const h = start({ retryPreferredAfterMs: 30 });
    for (const [transport, name] of [[h.ws, "ws"], [h.sse, "sse"]] as const) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        await until(`${name} attempt ${attempt}`, () => transport.connections.length === attempt);
        transport.last.end({ kind: "unusable", reason: "blocked" });
      }
    }
    await until("poll", () => h.poll.connections.length === 1);
    h.poll.last.deliver(notification("a", 1));
    await until("connected over poll", () => h.client.state.state === "connected");
    assert.deepEqual(names(h), ["connecting:ws", "connecting:ws", "connecting:sse", "connecting:sse", "connecting:poll", "connected:poll"]);
    await until("ws again", () => h.ws.connections.length === 3);
    assert.ok(h.poll.last.closed, "the poll connection was closed for it");
    assert.equal(h.ws.last.link.after, undefined, "a's acknowledgement is not confirmed yet");
    h.ws.last.deliver(notification("a", 1), notification("b", 2));
    await until("b", () => h.received.length === 2);
    assert.deepEqual(h.received.map((n) => n.id), ["a", "b"], "no duplicate across transports");
    h.client.close();
  });

  test("when every transport fails, the best is tried again after a backoff", async () => {
    const h = start({ transports: ["ws", "poll"] });
    for (const transport of [h.ws, h.poll]) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        await until(`attempt ${attempt}`, () => transport.connections.length === attempt);
        transport.last.end({ kind: "unusable", reason: "no" });
      }
    }
    await until("ws again", () => h.ws.connections.length === 3);
    assert.equal(h.sse.connections.length, 0, "sse was not in the list");
    assert.ok(h.states.some((s) => s.state === "reconnecting"));
    h.client.close();
  });

  test("a lost connection is made again on the same transport", async () => {
    const h = start({ transports: ["sse", "poll"] });
    await until("sse", () => h.sse.connections.length === 1);
    h.sse.last.deliver();
    h.sse.last.end({ kind: "lost", reason: "restart" });
    await until("sse again", () => h.sse.connections.length === 2);
    h.sse.last.end({ kind: "lost", reason: "still away" });
    await until("sse a third time", () => h.sse.connections.length === 3);
    assert.equal(h.poll.connections.length, 0);
    h.client.close();
  });

  test("rejects an unknown transport", () => {
    assert.throws(() => new NotificationClient({ url: "http://x", token: "t", transports: ["carrier-pigeon" as "ws"] }), /transports/);
  });
});

describe("tokens", () => {
  test("a refused token is replaced through getToken, at once", async () => {
    let calls = 0;
    const h = start({ token: undefined, getToken: async () => `token-${++calls}` });
    await until("ws", () => h.ws.connections.length === 1);
    assert.equal(h.ws.last.link.token, "token-1");
    h.ws.last.end({ kind: "unauthorized", reason: "401 unauthorized: expired" });
    await until("ws again", () => h.ws.connections.length === 2);
    assert.equal(h.ws.last.link.token, "token-2");
    assert.ok(!h.states.some((s) => s.state === "reconnecting"), "no wait for the first refusal");
    h.ws.last.end({ kind: "unauthorized", reason: "401 again" });
    await until("ws a third time", () => h.ws.connections.length === 3);
    assert.ok(h.states.some((s) => s.state === "reconnecting"), "a second refusal in a row waits");
    h.client.close();
  });

  test("a refused fixed token closes the client", async () => {
    const h = start();
    await until("ws", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "unauthorized", reason: "401" });
    await until("closed", () => h.client.state.state === "closed");
    assert.match((h.client.state as { reason: string }).reason, /refused the token/);
    assert.equal(h.errors.length, 1);
  });

  test("a connection refused for good closes the client", async () => {
    const h = start();
    await until("ws", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "refused", reason: "403 forbidden" });
    await until("closed", () => h.client.state.state === "closed");
  });

  test("getToken failing is retried with backoff", async () => {
    let calls = 0;
    const h = start({
      token: undefined,
      getToken: () => {
        if (++calls === 1) throw new Error("auth server away");
        return "fine";
      },
    });
    await until("ws", () => h.ws.connections.length === 1);
    assert.equal(h.ws.last.link.token, "fine");
    assert.match(h.errors[0]?.message ?? "", /auth server away/);
    h.client.close();
  });
});

describe("connectivity", () => {
  test("offline closes the connection and waits; online connects again at once", async () => {
    const h = start();
    await until("ws", () => h.ws.connections.length === 1);
    h.ws.last.deliver();
    h.connectivity.set(false);
    await until("offline", () => h.client.state.state === "offline");
    assert.ok(h.ws.last.closed);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h.ws.connections.length, 1, "no attempt while offline");
    h.connectivity.set(true);
    await until("ws again", () => h.ws.connections.length === 2);
    assert.ok(!h.states.some((s) => s.state === "reconnecting"), "no backoff after coming online");
    h.client.close();
  });

  test("going online cuts a backoff short", async () => {
    const h = start({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await until("ws", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "lost", reason: "x" });
    await until("reconnecting", () => h.client.state.state === "reconnecting");
    h.connectivity.set(true);
    await until("ws again", () => h.ws.connections.length === 2);
    h.client.close();
  });

  test("close() ends a backoff and every connection", async () => {
    const h = start({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await until("ws", () => h.ws.connections.length === 1);
    h.ws.last.end({ kind: "lost", reason: "x" });
    await until("reconnecting", () => h.client.state.state === "reconnecting");
    h.client.close();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.ws.connections.length, 1);
    assert.equal(h.client.state.state, "closed");
  });
});
