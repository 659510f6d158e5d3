// Acknowledgements over HTTP (`POST /v1/ack`, for SSE and long-polling) against a fetch the test answers for the service.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NotificationClient } from "../../src/client.js";
import { ApiError } from "../../src/errors.js";
import { ackRefusedForGood } from "../../src/transports/http.js";
import { MockConnectivity, notification, until } from "./mock.js";

/** An SSE service: the test writes events to the stream and answers each `POST /v1/ack` with the next of `answers`. */
class FakeService {
  readonly posts: { body: unknown; authorization: string }[] = [];
  private stream: ReadableStreamDefaultController<Uint8Array> | undefined;

  constructor(private readonly answers: (() => Response)[]) {}

  readonly fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    if (url.pathname === "/v1/connect/sse") {
      const body = new ReadableStream<Uint8Array>({ start: (controller) => void (this.stream = controller) });
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }
    const headers = new Headers(init?.headers);
    this.posts.push({ body: JSON.parse(String(init?.body)), authorization: headers.get("authorization") ?? "" });
    const answer = this.answers.shift() ?? (() => json(200, { acknowledged: [] }));
    return answer();
  }) as typeof globalThis.fetch;

  send(id: string, position: number): void {
    const data = JSON.stringify(notification(id, position));
    this.stream!.enqueue(new TextEncoder().encode(`event: notification\nid: ${position}\ndata: ${data}\n\n`));
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function refusal(status: number, code: string, field?: string): () => Response {
  return () => json(status, { error: { code, message: `refused: ${code}`, field } });
}

function start(service: FakeService, getToken?: () => string) {
  const client = new NotificationClient(
    { url: "http://notify.test", token: getToken ? undefined : "t", getToken, transports: ["sse"], fetch: service.fetch },
    { connectivity: new MockConnectivity() },
  );
  const errors: Error[] = [];
  const acked: string[] = [];
  client.on("error", (e) => void errors.push(e));
  client.on("acked", ({ ids }) => void acked.push(...ids));
  client.on("notification", () => {});
  return { client, errors, acked };
}

test("the documented refusals of POST /v1/ack are for good; 401, 408, 429, 5xx and unreadable_body are not", () => {
  const forGood: [number, string][] = [
    [403, "forbidden"],
    [400, "invalid_query"],
    [400, "invalid_body"],
    [413, "body_too_large"],
    [415, "unsupported_media_type"],
    [422, "empty_ack"],
    [422, "beyond_sent"],
    [422, "invalid_id"],
    [413, "too_many_ids"],
    [404, "http_404"],
  ];
  for (const [status, code] of forGood) {
    assert.ok(ackRefusedForGood(new ApiError(status, { error: { code } })), `${status} ${code}`);
  }
  const again: [number, string][] = [
    [401, "unauthorized"],
    [400, "unreadable_body"],
    [408, "body_timeout"],
    [429, "http_429"],
    [500, "http_500"],
    [503, "unavailable"],
  ];
  for (const [status, code] of again) {
    assert.ok(!ackRefusedForGood(new ApiError(status, { error: { code } })), `${status} ${code}`);
  }
});

test("an acknowledgement refused for good over HTTP is dropped, with one error event naming it and why", async () => {
  const service = new FakeService([refusal(422, "beyond_sent", "through")]);
  const { client, errors, acked } = start(service);
  await until("connected", () => client.state.state === "connected");
  service.send("a", 7);
  await until("an acknowledgement", () => service.posts.length === 1);
  assert.deepEqual(service.posts[0]!.body, { through: 7 });
  await until("an error", () => errors.length === 1);
  assert.match(errors[0]!.message, /through 7/);
  assert.match(errors[0]!.message, /beyond_sent/);
  assert.ok(errors[0]!.cause instanceof ApiError, "the service's answer is its cause");
  // Not sent again, not after ACK_RETRY_MS either.
  await new Promise((resolve) => setTimeout(resolve, 1_300));
  assert.equal(service.posts.length, 1, "not retried");
  assert.equal(errors.length, 1, "one error");
  assert.deepEqual(acked, []);
  assert.equal(client.position, undefined, "a later connection resumes before it");
  // What comes next is acknowledged as usual, and covers it.
  service.send("b", 8);
  await until("the next acknowledgement", () => service.posts.length === 2);
  assert.deepEqual(service.posts[1]!.body, { through: 8 });
  await until("confirmed", () => acked.length === 2);
  assert.equal(client.position, 8);
  client.close();
});

test("an acknowledgement over HTTP that fails for a while (503, 401) is sent again until taken; a 401 fetches a fresh token", async () => {
  const service = new FakeService([() => json(503, { error: { code: "unavailable" } }, { "Retry-After": "1" }), refusal(401, "unauthorized")]);
  let tokens = 0;
  const { client, errors, acked } = start(service, () => `token-${++tokens}`);
  await until("connected", () => client.state.state === "connected");
  service.send("a", 7);
  await until("taken at the third try", () => acked.length === 1, 4_000);
  assert.deepEqual(service.posts.map((p) => p.body), [{ through: 7 }, { through: 7 }, { through: 7 }]);
  assert.deepEqual(service.posts.map((p) => p.authorization), ["Bearer token-1", "Bearer token-1", "Bearer token-2"]);
  assert.equal(errors.length, 2, "each failure told");
  assert.equal(client.position, 7);
  client.close();
});
