// A service that hangs (connections open, nothing on them): SSE and long-polling take it for dead after the silence, shortened here.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";

import { NotificationClient } from "../../src/client.js";
import type { ClientState } from "../../src/types.js";
import { MockConnectivity, notification, until } from "./mock.js";

const SILENCE = 200;

/** One request the fake service got: its URL and signal, and (SSE) the stream to write to. */
interface Request {
  url: URL;
  signal: AbortSignal | undefined;
  stream?: ReadableStreamDefaultController<Uint8Array>;
}

/** A client over `transport` alone, closed when the test ends (else it would connect again for ever). */
function start(t: TestContext, transport: "sse" | "poll", fetch: typeof globalThis.fetch) {
  const client = new NotificationClient(
    { url: "http://notify.test", token: "t", transports: [transport], backoff: { initialMs: 10, maxMs: 10 }, fetch },
    { connectivity: new MockConnectivity(), silenceMs: SILENCE },
  );
  const states: ClientState[] = [];
  const received: string[] = [];
  client.on("state", (s) => void states.push(s));
  client.on("notification", (n) => void received.push(n.id));
  client.on("error", () => {});
  t.after(() => client.close());
  return { client, states, received };
}

/** An SSE service: each stream stays open, and says only what the test writes to it; acknowledgements are taken. */
function sseService() {
  const streams: Request[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    if (url.pathname === "/v1/connect/sse") {
      const request: Request = { url, signal: init?.signal ?? undefined };
      streams.push(request);
      const body = new ReadableStream<Uint8Array>({ start: (controller) => void (request.stream = controller) });
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }
    return new Response(JSON.stringify({ acknowledged: [] }), { status: 200, headers: { "Content-Type": "application/json" } });
  }) as typeof globalThis.fetch;
  const write = (request: Request, text: string) => request.stream!.enqueue(new TextEncoder().encode(text));
  return { streams, fetch, write };
}

test("an SSE stream that sends a notification then goes silent is abandoned after the silence, and the client connects again", async (t) => {
  const service = sseService();
  const { client, states, received } = start(t, "sse", service.fetch);
  await until("a stream", () => service.streams.length === 1);
  const first = service.streams[0]!;
  service.write(first, `event: notification\nid: 7\ndata: ${JSON.stringify(notification("a", 7))}\n\n`);
  await until("the notification", () => received.length === 1);
  await until("a second stream", () => service.streams.length === 2, 2_000);
  assert.ok(first.signal?.aborted, "the silent request is aborted");
  const lost = states.find((s) => s.state === "reconnecting");
  assert.ok(lost && lost.state === "reconnecting");
  assert.match(lost.reason, /silent for 0\.2 s/);
  assert.equal(service.streams[1]!.url.searchParams.get("after"), "7", "resumes after what it had");
  await until("connected again", () => client.state.state === "connected");
  client.close();
  assert.ok(service.streams[1]!.signal?.aborted, "closing aborts the request");
});

test("keep-alive comments alone keep an SSE stream open", async (t) => {
  const service = sseService();
  const { client, states } = start(t, "sse", service.fetch);
  await until("connected", () => client.state.state === "connected");
  const stream = service.streams[0]!;
  // Four times the silence, a comment every half of it.
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, SILENCE / 2));
    service.write(stream, ": keep-alive\n");
  }
  assert.equal(service.streams.length, 1, "one stream");
  assert.ok(!stream.signal?.aborted, "not aborted");
  assert.deepEqual(
    states.map((s) => s.state).filter((s) => s !== "connecting"),
    ["connected"],
    "never lost",
  );
});

test("a poll that is never answered is abandoned after the silence and polled again", async (t) => {
  const polls: Request[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request: Request = { url: new URL(String(input)), signal: init?.signal ?? undefined };
    polls.push(request);
    // The first poll of each connection (wait=0) is answered; a waiting one never is, as by a hung service.
    if (request.url.searchParams.get("wait") === "0") {
      return new Response(JSON.stringify({ notifications: [], next: null }), { status: 200, headers: { "Content-Type": "application/json" } });
    }
    return new Promise<Response>((_, reject) => request.signal?.addEventListener("abort", () => reject(request.signal!.reason), { once: true }));
  }) as typeof globalThis.fetch;
  const { client, states } = start(t, "poll", fetch);
  await until("a waiting poll", () => polls.length === 2);
  await until("the next connection's waiting poll", () => polls.length === 4, 2_000);
  assert.ok(polls[1]!.signal?.aborted, "the unanswered poll is aborted");
  assert.equal(polls[2]!.url.searchParams.get("wait"), "0", "polled again, as a new connection");
  const lost = states.find((s) => s.state === "reconnecting");
  assert.ok(lost && lost.state === "reconnecting");
  assert.match(lost.reason, /not answered within 0\.2 s/);
  client.close();
  await until("closed", () => polls[3]!.signal?.aborted === true);
});
