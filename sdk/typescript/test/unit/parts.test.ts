// The client's parts on their own: the ledger, the event-stream parser, the token, the backoff.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { backoffDelay } from "../../src/backoff.js";
import { Ledger, ackBody } from "../../src/ledger.js";
import { TokenSource, expiry } from "../../src/token.js";
import { SseParser } from "../../src/transports/sse-parser.js";

describe("ledger", () => {
  test("acknowledgements in a row go as one through, the others by id", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    for (const [id, position] of [["a", 10], ["b", 20], ["c", 30], ["d", 40]] as const) ledger.receive(id, position);
    for (const id of ["b", "a", "d"]) ledger.settle(id);
    assert.deepEqual(ledger.take(true), { through: 20, ids: ["d"], conn: 1 });
    assert.equal(ledger.take(true), null, "nothing new");
    ledger.settle("c");
    assert.deepEqual(ledger.take(true), { through: 40, ids: [], conn: 1 }, "through covers d too");
  });

  test("without through (a poll's cursor carries the prefix), only what is beyond the prefix goes, by id", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    ledger.receive("a", 1);
    ledger.receive("b", 2);
    ledger.receive("c", 3);
    ledger.settle("a");
    ledger.settle("c");
    assert.deepEqual(ledger.take(false), { ids: ["c"], conn: 1 });
    assert.equal(ledger.ackedThrough, 1, "the cursor");
  });

  test("what an earlier connection received is acknowledged by id; through never passes what this one was sent", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    ledger.receive("a", 1);
    ledger.receive("b", 2);
    ledger.newConnection();
    ledger.receive("c", 3);
    ledger.settle("a");
    ledger.settle("b");
    ledger.settle("c");
    assert.deepEqual(ledger.take(true), { through: 3, ids: ["a", "b"], conn: 2 });
  });

  test("it resumes after the confirmed prefix; a lost acknowledgement goes again on the next connection", () => {
    const ledger = new Ledger(100);
    ledger.newConnection();
    ledger.receive("a", 101);
    ledger.receive("b", 102);
    ledger.settle("a");
    ledger.settle("b");
    const batch = ledger.take(true)!;
    assert.equal(ledger.resumeAfter, 100, "not confirmed yet");
    ledger.newConnection();
    assert.deepEqual(ledger.take(true), { ids: ["a", "b"], conn: 2 }, "sent again by id");
    assert.deepEqual(ledger.confirm({ ids: ["a", "b"], conn: 2 }), ["a", "b"]);
    assert.equal(ledger.resumeAfter, 102);
    assert.equal(ledger.receive("a", 101), "duplicate", "remembered after pruning");
    void batch;
  });

  test("at most 1000 ids go in one acknowledgement", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    ledger.receive("first", 0);
    for (let i = 1; i <= 1500; i++) {
      ledger.receive(`n${i}`, i);
      ledger.settle(`n${i}`);
    }
    assert.equal(ledger.take(true)?.ids.length, 1000);
    assert.equal(ledger.take(true)?.ids.length, 500);
  });

  test("a notification a handler failed on does not hold back the pruning of those confirmed after it", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    ledger.receive("a", 1);
    ledger.fail("a");
    for (let i = 2; i <= 100; i++) {
      ledger.receive(`n${i}`, i);
      ledger.settle(`n${i}`);
    }
    const batch = ledger.take(true)!;
    assert.equal(batch.through, undefined, "a is not acknowledged");
    assert.equal(batch.ids.length, 99);
    assert.equal(ledger.confirm(batch).length, 99);
    assert.equal(ledger.held, 1, "only a is held");
    assert.equal(ledger.resumeAfter, undefined, "a later connection resumes before a");
    // a comes again, and one of them too (the service had not heard): that one is acknowledged again, not handed over.
    ledger.newConnection();
    assert.equal(ledger.receive("a", 1), "new");
    assert.equal(ledger.receive("n50", 50), "duplicate");
    assert.deepEqual(ledger.take(true), { ids: ["n50"], conn: 2 });
    // This time a's handler resolves: through covers both.
    ledger.settle("a");
    const last = ledger.take(true)!;
    assert.deepEqual(last, { through: 50, ids: [], conn: 2 });
    assert.deepEqual(ledger.confirm(last), ["a", "n50"]);
    assert.equal(ledger.held, 0);
    assert.equal(ledger.resumeAfter, 50);
    assert.equal(ledger.receive("n99", 99), "duplicate", "remembered after pruning");
  });

  test("ackBody: through when there is one, ids when there are some", () => {
    assert.deepEqual(ackBody({ through: 7, ids: [], conn: 1 }), { through: 7 });
    assert.deepEqual(ackBody({ ids: ["a"], conn: 1 }), { ids: ["a"] });
    assert.deepEqual(ackBody({ through: 7, ids: ["a"], conn: 1 }), { through: 7, ids: ["a"] });
  });

  test("a poll's cursor confirms what it covers", () => {
    const ledger = new Ledger();
    ledger.newConnection();
    ledger.receive("a", 1);
    ledger.receive("b", 2);
    ledger.settle("a");
    assert.equal(ledger.ackedThrough, 1);
    assert.deepEqual(ledger.confirmThrough(1), ["a"]);
    assert.equal(ledger.resumeAfter, 1);
    assert.equal(ledger.pending, 1);
  });
});

describe("event stream", () => {
  test("events split across chunks anywhere, with every line ending", () => {
    const text = ': keep-alive\r\nevent: notification\r\nid: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: error\ndata: x\n\ndata: plain\r\r';
    for (let size = 1; size <= text.length; size++) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < text.length; i += size) events.push(...parser.push(text.slice(i, i + size)));
      assert.deepEqual(events, [
        { event: "notification", data: '{"a":\n1}', id: "7" },
        { event: "error", data: "x", id: "7" },
        { event: "message", data: "plain", id: "7" },
      ], `chunks of ${size}`);
    }
  });
});

/** A JWT (unsigned: only its claims are read) that expires at `exp` seconds. */
function jwt(exp: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ sub: "alice", exp })}.sig`;
}

describe("token", () => {
  test("expiry is read from the JWT", () => {
    assert.equal(expiry(jwt(1_000)), 1_000_000);
    assert.equal(expiry("not-a-jwt"), undefined);
  });

  test("a token is fetched again when a fifth of its life is left, and after a refusal", async () => {
    let now = 0;
    let calls = 0;
    const tokens = new TokenSource(undefined, () => jwt(100 + 100 * calls++), () => now);
    const first = await tokens.get();
    assert.equal(await tokens.get(), first, "fresh: kept");
    now = 79_000;
    assert.equal(await tokens.get(), first, "more than a fifth left");
    now = 81_000;
    const second = await tokens.get();
    assert.notEqual(second, first, "refreshed before it expires");
    tokens.refused(second);
    assert.notEqual(await tokens.get(), second);
    assert.equal(calls, 3);
  });

  test("callers at once share one getToken", async () => {
    let calls = 0;
    const tokens = new TokenSource(undefined, async () => `t${++calls}`);
    const [a, b] = await Promise.all([tokens.get(), tokens.get()]);
    assert.equal(a, b);
    assert.equal(calls, 1);
  });

  test("a fixed token is kept even past its expiry", async () => {
    const tokens = new TokenSource(jwt(1), undefined, () => 10_000_000);
    assert.equal(await tokens.get(), jwt(1));
    assert.equal(tokens.refreshable, false);
  });
});

describe("backoff", () => {
  test("doubles, caps, and jitters between half and all", () => {
    assert.equal(backoffDelay(1, 500, 30_000, () => 1), 500);
    assert.equal(backoffDelay(3, 500, 30_000, () => 1), 2_000);
    assert.equal(backoffDelay(20, 500, 30_000, () => 1), 30_000);
    assert.equal(backoffDelay(1, 500, 30_000, () => 0), 250);
  });
});
