// @saasaparilla/notifications 0.1.0: built from sdk/typescript/src by scripts/build.mjs. Apache-2.0.

// src/backoff.ts
function backoffDelay(attempt, initialMs, maxMs, random = Math.random) {
  const doubled = initialMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(doubled, Math.max(maxMs, initialMs));
  return Math.round(capped * (0.5 + random() / 2));
}

// src/emitter.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  on(event, listener) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(listener);
    return () => void set.delete(listener);
  }
  /** The listeners of `event`, as they are now. */
  of(event) {
    return [...this.listeners.get(event) ?? []];
  }
  emit(event, ...args) {
    for (const listener of this.of(event)) {
      try {
        void listener(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
};

// src/recent.ts
var Recent = class {
  constructor(capacity = 1e4) {
    this.capacity = capacity;
  }
  capacity;
  ids = /* @__PURE__ */ new Set();
  /** Adds `id`; false if it was there already. */
  add(id) {
    if (this.ids.has(id)) return false;
    if (this.ids.size >= this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== void 0) this.ids.delete(oldest);
    }
    this.ids.add(id);
    return true;
  }
  has(id) {
    return this.ids.has(id);
  }
};

// src/ledger.ts
var MAX_IDS = 1e3;
function ackBody(batch) {
  const body = {};
  if (batch.through !== void 0) body.through = batch.through;
  if (batch.ids.length) body.ids = batch.ids;
  return body;
}
var Ledger = class {
  /** By position; what is confirmed is pruned into `done`, and the confirmed prefix into `base`. */
  entries = [];
  byId = /* @__PURE__ */ new Map();
  /** Ids confirmed and pruned, for de-duplication. */
  done = new Recent();
  /** Everything up to here is confirmed (or was before this client); some beyond it may be too, pruned into `done`. */
  base;
  conn = 0;
  /** The largest position the current connection was sent. */
  maxSent;
  /** The last `through` sent on the current connection. */
  throughSent;
  constructor(after) {
    this.base = after;
  }
  /** The position to resume after: everything up to it is acknowledged and confirmed. */
  get resumeAfter() {
    return this.base;
  }
  /** The largest position up to which the application is done with everything. */
  get ackedThrough() {
    let through = this.base;
    for (const entry of this.entries) {
      if (entry.state !== "acked" && entry.state !== "confirmed") break;
      through = entry.position;
    }
    return through;
  }
  /** How many the application has not finished with. */
  get pending() {
    let count = 0;
    for (const entry of this.entries) if (entry.state === "pending") count++;
    return count;
  }
  /** How many notifications it holds: those not yet confirmed. */
  get held() {
    return this.entries.length;
  }
  /** How many wait to come again because a handler failed on them. */
  get failed() {
    let count = 0;
    for (const entry of this.entries) if (entry.state === "failed") count++;
    return count;
  }
  /** A new connection begins: what it is sent is counted afresh, and acknowledgements not confirmed go again. */
  newConnection() {
    this.conn++;
    this.maxSent = void 0;
    this.throughSent = void 0;
    for (const entry of this.entries) if (entry.state === "acked") entry.idSent = false;
  }
  /** Records a notification the current connection received; `"new"` if the application should have it. */
  receive(id, position) {
    this.maxSent = this.maxSent === void 0 ? position : Math.max(this.maxSent, position);
    const entry = this.byId.get(id);
    if (entry && entry.state !== "failed") {
      entry.conn = this.conn;
      if (entry.state === "confirmed") entry.state = "acked";
      entry.idSent = false;
      return "duplicate";
    }
    if (this.base !== void 0 && position <= this.base) {
      this.throughSent = void 0;
      return "duplicate";
    }
    if (this.done.has(id)) {
      this.insert({ id, position, state: "acked", conn: this.conn, idSent: false });
      return "duplicate";
    }
    if (entry) {
      entry.state = "pending";
      entry.conn = this.conn;
      return "new";
    }
    this.insert({ id, position, state: "pending", conn: this.conn, idSent: false });
    return "new";
  }
  /** Adds `entry` in position order. */
  insert(entry) {
    this.byId.set(entry.id, entry);
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1].position > entry.position) at--;
    this.entries.splice(at, 0, entry);
  }
  /** The application is done with `id`; false if no such notification is held. */
  settle(id) {
    const entry = this.byId.get(id);
    if (!entry || entry.state === "acked" || entry.state === "confirmed") return false;
    entry.state = "acked";
    entry.idSent = false;
    return true;
  }
  /** A handler failed on `id`: it stays unacknowledged, and is handed over again when it comes again. */
  fail(id) {
    const entry = this.byId.get(id);
    if (entry && entry.state === "pending") entry.state = "failed";
  }
  /**
   * The acknowledgement to send now, or null: `through` (if `cumulative`)
   * up to what the current connection was sent, and by id whatever that
   * does not cover. Without `cumulative` (long-polling, whose next poll's
   * cursor acknowledges the prefix), only what lies beyond the prefix.
   */
  take(cumulative) {
    let through;
    if (cumulative) {
      const done = this.ackedThrough;
      const candidate = done === void 0 || this.maxSent === void 0 ? void 0 : Math.min(done, this.maxSent);
      if (candidate !== void 0 && (this.throughSent === void 0 || candidate > this.throughSent)) {
        through = candidate;
        this.throughSent = candidate;
      }
    }
    const covered = cumulative ? this.throughSent : void 0;
    const cursor = cumulative ? void 0 : this.ackedThrough;
    const ids = [];
    for (const entry of this.entries) {
      if (entry.state !== "acked" || entry.idSent) continue;
      if (covered !== void 0 && entry.conn === this.conn && entry.position <= covered) continue;
      if (cursor !== void 0 && entry.position <= cursor) continue;
      entry.idSent = true;
      ids.push(entry.id);
      if (ids.length === MAX_IDS) break;
    }
    if (through === void 0 && ids.length === 0) return null;
    return through === void 0 ? { ids, conn: this.conn } : { through, ids, conn: this.conn };
  }
  /** The service answered `batch`: its notifications are done. Returns the ids confirmed now. */
  confirm(batch) {
    const ids = new Set(batch.ids);
    const confirmed = [];
    for (const entry of this.entries) {
      if (entry.state !== "acked") continue;
      const byThrough = batch.through !== void 0 && entry.conn === batch.conn && entry.position <= batch.through;
      if (byThrough || ids.has(entry.id)) {
        entry.state = "confirmed";
        confirmed.push(entry.id);
      }
    }
    this.prune();
    return confirmed;
  }
  /** A poll's cursor was accepted: everything acknowledged through it is done, whichever connection had it. */
  confirmThrough(position) {
    const confirmed = [];
    for (const entry of this.entries) {
      if (entry.position > position) break;
      if (entry.state === "acked") {
        entry.state = "confirmed";
        confirmed.push(entry.id);
      }
    }
    this.prune();
    return confirmed;
  }
  /**
   * `batch` was not taken (the request failed): it goes again. A batch the
   * service refused for good is not given back: its notifications stay
   * unconfirmed, so they go again by id on the next connection, or by
   * `through` once they come again.
   */
  retry(batch) {
    for (const id of batch.ids) {
      const entry = this.byId.get(id);
      if (entry?.state === "acked") entry.idSent = false;
    }
    if (batch.through !== void 0 && batch.conn === this.conn) this.throughSent = void 0;
  }
  /**
   * Drops what is confirmed, remembering its ids; `base` moves over the
   * confirmed prefix only, so that a connection resumes before a
   * notification that is not (one a handler failed on, say).
   */
  prune() {
    let prefix = true;
    const kept = [];
    for (const entry of this.entries) {
      if (entry.state !== "confirmed") {
        prefix = false;
        kept.push(entry);
        continue;
      }
      this.done.add(entry.id);
      this.byId.delete(entry.id);
      if (prefix) this.base = entry.position;
    }
    if (kept.length !== this.entries.length) this.entries = kept;
  }
};

// src/online.ts
var browserConnectivity = {
  get online() {
    const nav = globalThis.navigator;
    return typeof nav?.onLine === "boolean" ? nav.onLine : true;
  },
  watch(listener) {
    const target = globalThis;
    if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") return () => {
    };
    const online = () => listener(true);
    const offline = () => listener(false);
    target.addEventListener("online", online);
    target.addEventListener("offline", offline);
    return () => {
      target.removeEventListener?.("online", online);
      target.removeEventListener?.("offline", offline);
    };
  }
};

// src/token.ts
var TokenSource = class {
  constructor(token, getToken, now = Date.now) {
    this.getToken = getToken;
    this.now = now;
    if (token) this.set(token);
    if (!token && !getToken) throw new TypeError("connect() needs a token or getToken");
  }
  getToken;
  now;
  current;
  /** When the current token stops being fresh (ms since the epoch), if it says when it expires. */
  refreshAt = Infinity;
  fetching;
  /** Whether a refused token can be replaced. */
  get refreshable() {
    return this.getToken !== void 0;
  }
  /** A token that is fresh, fetching one if needed. */
  async get() {
    if (this.current !== void 0 && (this.now() < this.refreshAt || !this.getToken)) return this.current;
    return this.fetch();
  }
  /** The service refused `token`: the next `get` fetches another. */
  refused(token) {
    if (token === this.current && this.getToken) {
      this.current = void 0;
      this.refreshAt = Infinity;
    }
  }
  fetch() {
    const getToken = this.getToken;
    if (!getToken) return Promise.reject(new Error("no token"));
    if (!this.fetching) {
      const fetching = (async () => {
        const token = await getToken();
        if (typeof token !== "string" || token === "") throw new TypeError("getToken gave no token");
        this.set(token);
        return token;
      })();
      this.fetching = fetching;
      const done = () => {
        if (this.fetching === fetching) this.fetching = void 0;
      };
      fetching.then(done, done);
    }
    return this.fetching;
  }
  /** Keeps `token`, to be refreshed when a fifth of its life is left (at most a minute before it expires). */
  set(token) {
    this.current = token;
    const expires = expiry(token);
    if (expires === void 0) {
      this.refreshAt = Infinity;
      return;
    }
    const now = this.now();
    const margin = Math.min(6e4, Math.max(0, (expires - now) / 5));
    this.refreshAt = expires - margin;
  }
};
function expiry(token) {
  const part = token.split(".")[1];
  if (!part) return void 0;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
    const exp = claims.exp;
    return typeof exp === "number" ? exp * 1e3 : void 0;
  } catch {
    return void 0;
  }
}

// src/transports/link.ts
var SILENCE_MS = 75e3;

// src/errors.ts
var ApiError = class extends Error {
  status;
  code;
  field;
  /** From `Retry-After`, when the service sent one. */
  retryAfterMs;
  constructor(status, body, retryAfter) {
    const error = body?.error ?? {};
    const code = error.code ?? `http_${status}`;
    super(`${status} ${code}${error.field ? ` (${error.field})` : ""}: ${error.message ?? "no details"}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    if (error.field) this.field = error.field;
    const seconds = retryAfter ? Number(retryAfter) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) this.retryAfterMs = seconds * 1e3;
  }
  /** The token was refused: a fresh one may help. */
  get isAuth() {
    return this.status === 401;
  }
  /** Worth trying again later (the service is busy or away), as opposed to a request that is wrong. */
  get isRetryable() {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
};
async function apiError(response) {
  const body = await response.json().catch(() => null);
  return new ApiError(response.status, body, response.headers.get("retry-after"));
}

// src/transports/http.ts
function endpoint(base, path, params) {
  const url = new URL(base + path);
  for (const [key, value] of Object.entries(params)) {
    if (value !== void 0) url.searchParams.set(key, String(value));
  }
  return url.href;
}
function endedBy(error) {
  if (error.isAuth) return { kind: "unauthorized", reason: error.message };
  if (error.isRetryable) {
    return error.retryAfterMs === void 0 ? { kind: "lost", reason: error.message } : { kind: "lost", reason: error.message, retryAfterMs: error.retryAfterMs };
  }
  if (error.status === 403 || error.code === "invalid_query" || error.code === "invalid_header") {
    return { kind: "refused", reason: error.message };
  }
  return { kind: "unusable", reason: error.message };
}
function fetchConnection(link, cumulative, run) {
  const abort = new AbortController();
  const acks = new AckPoster(link, cumulative);
  const ended = run(abort.signal).catch(
    (e) => abort.signal.aborted ? { kind: "closed" } : { kind: "lost", reason: String(e) }
  );
  void ended.then(() => acks.stop());
  return {
    ended,
    acksReady: () => void acks.flush(),
    close: () => abort.abort()
  };
}
var SilenceError = class extends Error {
  name = "SilenceError";
};
var Silence = class {
  constructor(outer, ms) {
    this.outer = outer;
    this.ms = ms;
    this.stopped = new Promise(
      (_, reject) => this.controller.signal.addEventListener("abort", () => reject(this.expired ? new SilenceError(`silent for ${ms} ms`) : outer.reason), { once: true })
    );
    this.stopped.catch(() => {
    });
    if (outer.aborted) this.controller.abort();
    else outer.addEventListener("abort", this.onOuterAbort, { once: true });
    this.heard();
  }
  outer;
  ms;
  controller = new AbortController();
  timer;
  stopped;
  onOuterAbort = () => this.controller.abort();
  /** Whether the request was abandoned for its silence. */
  expired = false;
  get signal() {
    return this.controller.signal;
  }
  /** Something came: the silence starts again. */
  heard() {
    clearTimeout(this.timer);
    if (this.controller.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, this.ms);
  }
  /** `step`, or a rejection as soon as the request is aborted (closed, or silent). */
  guard(step) {
    return Promise.race([step, this.stopped]);
  }
  stop() {
    clearTimeout(this.timer);
    this.outer.removeEventListener("abort", this.onOuterAbort);
  }
};
var ACK_RETRY_MS = 1e3;
function ackRefusedForGood(error) {
  return error.status >= 400 && error.status < 500 && !error.isAuth && !error.isRetryable && error.code !== "unreadable_body";
}
var AckPoster = class {
  constructor(link, cumulative) {
    this.link = link;
    this.cumulative = cumulative;
  }
  link;
  cumulative;
  posting = false;
  stopped = false;
  stop() {
    this.stopped = true;
  }
  /** Sends what is waiting, unless a request is already under way (it sends the rest after). */
  async flush() {
    if (this.posting) return;
    this.posting = true;
    try {
      let batch;
      while (!this.stopped && (batch = this.link.takeAcks(this.cumulative))) {
        if (!await this.post(batch)) {
          await new Promise((resolve) => setTimeout(resolve, ACK_RETRY_MS));
        }
      }
    } finally {
      this.posting = false;
    }
  }
  /** Posts `batch`; false if it should be tried again later, true once it is taken or refused for good. */
  async post(batch) {
    let token = "";
    try {
      token = await this.link.freshToken();
      const response = await this.link.fetch(`${this.link.base}/v1/ack`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(ackBody(batch))
      });
      if (response.ok) {
        await response.body?.cancel();
        this.link.confirmed(batch);
        return true;
      }
      const error = await apiError(response);
      if (error.code === "unknown_id") {
        this.link.confirmed(batch);
        return true;
      }
      if (ackRefusedForGood(error)) {
        this.link.ackRefused(batch, error);
        return true;
      }
      if (error.isAuth) this.link.refused(token);
      this.link.notTaken(batch, error);
      return false;
    } catch (e) {
      this.link.notTaken(batch, e);
      return false;
    }
  }
};

// src/transports/poll.ts
var AFTER_FAILURE_MS = 1e3;
function openPoll(link) {
  return fetchConnection(link, false, (signal) => loop(link, signal));
}
async function loop(link, signal) {
  let first = true;
  let confirmed = link.after;
  const aborted = new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  for (; ; ) {
    await Promise.race([link.settled(), aborted]);
    if (link.hasFailures()) await new Promise((resolve) => setTimeout(resolve, AFTER_FAILURE_MS));
    if (signal.aborted) return { kind: "closed" };
    const after = first ? link.after : link.ackedThrough() ?? link.after;
    const token = first ? link.token : await link.freshToken();
    const silence = new Silence(signal, link.silenceMs);
    let answer;
    try {
      let response;
      try {
        const wait = first || after !== void 0 && after !== confirmed ? 0 : link.pollWaitSecs;
        response = await silence.guard(
          link.fetch(endpoint(link.base, "/v1/connect/poll", { after, wait }), {
            headers: { Authorization: `Bearer ${token}` },
            cache: "no-store",
            signal: silence.signal
          })
        );
        if (!response.ok) {
          const error = await silence.guard(apiError(response));
          if (error.isAuth && !first) link.refused(token);
          return endedBy(error);
        }
        answer = await silence.guard(response.json());
      } catch (e) {
        if (signal.aborted) return { kind: "closed" };
        if (silence.expired) return { kind: "lost", reason: `a poll was not answered within ${link.silenceMs / 1e3} s: taken for dead` };
        return { kind: "lost", reason: `a poll failed: ${String(e)}` };
      }
    } finally {
      silence.stop();
    }
    if (after !== void 0) {
      link.confirmedThrough(after);
      confirmed = after;
    }
    if (first) link.opened();
    first = false;
    for (const notification of answer.notifications) link.receive(notification);
  }
}

// src/transports/sse-parser.ts
var SseParser = class {
  buffer = "";
  event = "";
  data = [];
  id;
  /** A chunk ended with CR: an LF starting the next one belongs to it. */
  skipLf = false;
  /** Feeds decoded text; returns the events it completed. */
  push(text) {
    if (this.skipLf && text.startsWith("\n")) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    const events = [];
    for (; ; ) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.buffer.slice(0, end);
      let next = end + 1;
      if (this.buffer[end] === "\r") {
        if (next === this.buffer.length) this.skipLf = true;
        else if (this.buffer[next] === "\n") next++;
      }
      this.buffer = this.buffer.slice(next);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }
  line(line) {
    if (line === "") {
      const event = this.data.length ? { event: this.event || "message", data: this.data.join("\n"), ...this.id === void 0 ? {} : { id: this.id } } : void 0;
      this.event = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return void 0;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return void 0;
  }
};

// src/transports/sse.ts
function openSse(link) {
  return fetchConnection(link, true, (signal) => stream(link, signal));
}
async function stream(link, signal) {
  const silence = new Silence(signal, link.silenceMs);
  const silent = () => ({
    kind: "lost",
    reason: `the event stream was silent for ${link.silenceMs / 1e3} s (the service sends a keep-alive every 15 s): taken for dead`
  });
  try {
    let response;
    try {
      response = await silence.guard(
        link.fetch(endpoint(link.base, "/v1/connect/sse", { after: link.after }), {
          headers: { Authorization: `Bearer ${link.token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: silence.signal
        })
      );
    } catch (e) {
      if (signal.aborted) return { kind: "closed" };
      return silence.expired ? silent() : { kind: "lost", reason: `the event stream could not be opened: ${String(e)}` };
    }
    silence.heard();
    if (!response.ok) return endedBy(await silence.guard(apiError(response)));
    if (!response.body) return { kind: "unusable", reason: "the event stream has no body" };
    link.opened();
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let reason = "the event stream ended";
    for (; ; ) {
      let chunk;
      try {
        chunk = await silence.guard(reader.read());
      } catch (e) {
        if (!silence.expired) throw e;
        void reader.cancel().catch(() => {
        });
        return silent();
      }
      const { value, done } = chunk;
      if (done) return { kind: "lost", reason };
      silence.heard();
      for (const event of parser.push(value)) {
        if (event.event === "notification") link.receive(JSON.parse(event.data));
        else if (event.event === "error") reason = `the service ended the stream: ${event.data}`;
      }
    }
  } finally {
    silence.stop();
  }
}

// src/transports/ws.ts
var ACK_REFUSALS = /* @__PURE__ */ new Set(["empty_ack", "too_many_ids", "invalid_id", "beyond_sent"]);
var PROBE_TIMEOUT_MS = 5e3;
function openWebSocket(link) {
  const Socket = link.WebSocket;
  if (!Socket) {
    return { ended: Promise.resolve({ kind: "unusable", reason: "there is no WebSocket here" }), acksReady() {
    }, close() {
    } };
  }
  const url = endpoint(link.base.replace(/^http/, "ws"), "/v1/connect/ws", { token: link.token, after: link.after });
  let socket;
  try {
    socket = new Socket(url);
  } catch (e) {
    return { ended: Promise.resolve({ kind: "unusable", reason: String(e) }), acksReady() {
    }, close() {
    } };
  }
  let opened = false;
  let closing = false;
  const unanswered = [];
  let reason = "the service closed the connection";
  let flushQueued = false;
  const sendAcks = () => {
    flushQueued = false;
    if (socket.readyState !== 1) return;
    let batch;
    while (batch = link.takeAcks(true)) {
      socket.send(JSON.stringify({ type: "ack", ...ackBody(batch) }));
      unanswered.push(batch);
    }
  };
  const ended = new Promise((resolve) => {
    socket.onopen = () => {
      opened = true;
      link.opened();
      sendAcks();
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "notification") {
        link.receive(frame);
      } else if (frame.type === "acked") {
        const batch = unanswered.shift();
        if (batch) link.confirmed(batch);
      } else if (frame.type === "error" && frame.code && ACK_REFUSALS.has(frame.code)) {
        const batch = unanswered.shift();
        if (batch) link.ackRefused(batch, new Error(`${frame.code}: ${frame.message ?? ""}`));
      } else if (frame.type === "error" && frame.code === "unavailable") {
        const batch = unanswered.shift();
        if (batch) {
          link.notTaken(batch, new Error(`unavailable: ${frame.message ?? ""}`));
          setTimeout(acksReady, ACK_RETRY_MS);
        }
        reason = `unavailable: ${frame.message ?? ""}`;
      } else if (frame.type === "error" && frame.code !== "unknown_id") {
        reason = `${frame.code ?? "error"}: ${frame.message ?? ""}`;
      }
    };
    socket.onclose = (event) => {
      for (const batch of unanswered.splice(0)) link.notTaken(batch, new Error("the connection closed"));
      if (closing) return resolve({ kind: "closed" });
      if (opened) return resolve({ kind: "lost", reason: `${reason} (close code ${event.code})` });
      void probe(link).then(resolve);
    };
  });
  function acksReady() {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(sendAcks);
  }
  return {
    ended,
    acksReady,
    close: () => {
      closing = true;
      try {
        socket.close(1e3);
      } catch {
      }
    }
  };
}
async function probe(link) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
  try {
    const response = await link.fetch(endpoint(link.base, "/v1/connect/ws", { token: link.token, after: link.after }), {
      cache: "no-store",
      signal: abort.signal
    });
    if (response.ok) {
      await response.body?.cancel();
      return { kind: "unusable", reason: "the WebSocket handshake failed" };
    }
    const error = await apiError(response);
    if (error.code === "not_a_websocket") return { kind: "unusable", reason: "the WebSocket handshake failed, though the service is reachable" };
    return endedBy(error);
  } catch (e) {
    return { kind: "lost", reason: `the WebSocket handshake failed and the service is not reachable: ${String(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

// src/client.ts
var FACTORIES = { ws: openWebSocket, sse: openSse, poll: openPoll };
var NotificationClient = class {
  constructor(options, internals = {}) {
    this.options = options;
    if (!options.url) throw new TypeError("connect() needs the service's url");
    this.base = options.url.replace(/\/+$/, "");
    this.tokens = new TokenSource(options.token, options.getToken, internals.now);
    this.order = [...new Set(options.transports ?? ["ws", "sse", "poll"])];
    if (!this.order.length || this.order.some((t) => !(t in FACTORIES))) {
      throw new TypeError(`transports must be some of "ws", "sse", "poll": got ${JSON.stringify(options.transports)}`);
    }
    this.factories = { ...FACTORIES, ...internals.transports };
    this.connectivity = internals.connectivity ?? browserConnectivity;
    this.random = internals.random ?? Math.random;
    this.silenceMs = internals.silenceMs ?? SILENCE_MS;
    this.fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.ledger = new Ledger();
    this.current = { state: "connecting", transport: this.order[0] };
    queueMicrotask(() => void this.run());
  }
  options;
  events = new Emitter();
  ledger;
  tokens;
  base;
  order;
  factories;
  connectivity;
  random;
  silenceMs;
  fetch;
  WebSocket;
  current = { state: "connecting", transport: "ws" };
  connection;
  interrupt;
  /** Wakes the loop from a wait (closed, back online). */
  wake;
  /** Received and not yet handed to the application, in order. */
  queue = [];
  dispatching = false;
  /** Waiters for the application to be done with everything (long-polling). */
  idle = [];
  /** Listens to `event`; returns a function that stops listening. */
  on(event, listener) {
    const off = this.events.on(event, listener);
    if (event === "notification") void this.dispatch();
    return off;
  }
  /** The current state. */
  get state() {
    return this.current;
  }
  /** The position the next connection resumes after: everything up to it is acknowledged and confirmed. */
  get position() {
    return this.ledger.resumeAfter;
  }
  /** Acknowledges a notification this client received (with `ack: "manual"`, the only way it is). */
  ack(id) {
    if (this.ledger.settle(id)) {
      this.notifyIdle();
      this.connection?.acksReady();
    }
  }
  /** Closes the connection for good. Acknowledgements not yet sent are dropped: those notifications come again to the next client. */
  close() {
    if (this.interrupt === "close") return;
    this.interrupt = "close";
    this.connection?.close();
    this.wake?.();
    this.notifyIdle();
    this.setState({ state: "closed" });
  }
  get closed() {
    return this.interrupt === "close";
  }
  setState(state) {
    if (this.current.state === "closed") return;
    this.current = state;
    this.events.emit("state", state);
  }
  /** Connects, and connects again, until closed. */
  async run() {
    const unwatch = this.connectivity.watch((online) => {
      if (!online && this.connection) {
        this.interrupt ??= "offline";
        this.connection.close();
      }
      this.wake?.();
    });
    let failures = 0;
    let index = 0;
    let authFailures = 0;
    let unusable = 0;
    try {
      while (!this.closed) {
        if (!this.connectivity.online) {
          this.setState({ state: "offline" });
          await this.sleep(Infinity);
          failures = 0;
          continue;
        }
        const transport = this.order[index];
        this.setState({ state: "connecting", transport });
        let token;
        try {
          token = await this.tokens.get();
        } catch (e) {
          this.events.emit("error", asError(e, "getToken failed"));
          await this.backoff(++failures, "getToken failed");
          continue;
        }
        if (this.closed) break;
        const { ended, connected } = await this.connect(transport, token, index > 0);
        if (connected) {
          failures = 0;
          authFailures = 0;
          unusable = 0;
        }
        const interrupt = this.interrupt;
        if (this.interrupt !== "close") this.interrupt = void 0;
        if (ended.kind === "closed") {
          if (interrupt === "upgrade") index = 0;
          continue;
        }
        if (ended.kind === "unauthorized") {
          this.tokens.refused(token);
          if (!this.tokens.refreshable) return this.fail(`the service refused the token: ${ended.reason}`);
          if (++authFailures > 1) await this.backoff(++failures, ended.reason);
          continue;
        }
        if (ended.kind === "refused") return this.fail(`the service refused the connection: ${ended.reason}`);
        if (ended.kind === "unusable") {
          if (++unusable < 2) continue;
          unusable = 0;
          index++;
          if (index >= this.order.length) {
            index = 0;
            await this.backoff(++failures, ended.reason);
          }
          continue;
        }
        await this.backoff(connected ? 1 : ++failures, ended.reason, ended.retryAfterMs);
      }
    } finally {
      unwatch();
    }
  }
  /** One connection over `transport`, until it ends. */
  async connect(transport, token, fallback) {
    this.ledger.newConnection();
    let connected = false;
    let upgrade;
    const link = {
      base: this.base,
      token,
      after: this.ledger.resumeAfter,
      fetch: this.fetch,
      WebSocket: this.WebSocket,
      pollWaitSecs: Math.min(60, Math.max(0, this.options.pollWaitSecs ?? 25)),
      silenceMs: this.silenceMs,
      opened: () => {
        if (connected || this.closed) return;
        connected = true;
        this.setState({ state: "connected", transport });
        this.connection?.acksReady();
        if (fallback) {
          upgrade = setTimeout(() => {
            this.interrupt ??= "upgrade";
            this.connection?.close();
          }, this.options.retryPreferredAfterMs ?? 6e4);
        }
      },
      receive: (notification) => this.receive(notification),
      takeAcks: (cumulative) => this.ledger.take(cumulative),
      confirmed: (batch) => {
        const ids = this.ledger.confirm(batch);
        if (ids.length) this.events.emit("acked", { ids });
      },
      notTaken: (batch, why) => {
        this.ledger.retry(batch);
        this.events.emit("error", asError(why, "an acknowledgement was not taken"));
      },
      ackRefused: (batch, why) => {
        this.events.emit("error", new Error(`the service refused the acknowledgement of ${describeAck(batch)}: ${why.message}`, { cause: why }));
      },
      freshToken: () => this.tokens.get(),
      refused: (refused) => this.tokens.refused(refused),
      settled: () => this.settled(),
      ackedThrough: () => this.ledger.ackedThrough,
      confirmedThrough: (position) => {
        const ids = this.ledger.confirmThrough(position);
        if (ids.length) this.events.emit("acked", { ids });
      },
      hasFailures: () => this.ledger.failed > 0
    };
    let connection;
    try {
      connection = this.factories[transport](link);
    } catch (e) {
      return { ended: { kind: "refused", reason: String(e) }, connected };
    }
    this.connection = connection;
    if (this.interrupt) connection.close();
    try {
      return { ended: await connection.ended, connected };
    } finally {
      clearTimeout(upgrade);
      this.connection = void 0;
    }
  }
  /** Waits before the next attempt, telling the application how long; returns early when closed or back online. */
  async backoff(attempt, reason, atLeastMs = 0) {
    if (this.closed) return;
    const { initialMs = 500, maxMs = 3e4 } = this.options.backoff ?? {};
    const delayMs = Math.max(atLeastMs, backoffDelay(attempt, initialMs, maxMs, this.random));
    this.setState({ state: "reconnecting", delayMs, reason });
    await this.sleep(delayMs);
  }
  /** Sleeps `ms`, or until woken: closed, or the device went online or offline. */
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : void 0;
      this.wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => this.wake = void 0);
  }
  fail(reason) {
    this.events.emit("error", new Error(reason));
    this.interrupt = "close";
    this.setState({ state: "closed", reason });
  }
  /** A notification from the connection: new ones are handed over in order, duplicates acknowledged again if they were before. */
  receive(notification) {
    if (typeof notification?.id !== "string" || typeof notification.position !== "number") {
      this.events.emit("error", new Error("the service sent a notification without an id or position"));
      return;
    }
    if (this.ledger.receive(notification.id, notification.position) === "new") {
      this.queue.push(notification);
      void this.dispatch();
    } else {
      this.connection?.acksReady();
    }
  }
  /** Hands queued notifications to the listeners, one at a time, in order; acknowledges each once they resolve. */
  async dispatch() {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.queue.length && this.events.of("notification").length) {
        const notification = this.queue.shift();
        try {
          await Promise.all(this.events.of("notification").map(async (handler) => handler(notification)));
          if ((this.options.ack ?? "auto") === "auto" && this.ledger.settle(notification.id)) {
            this.connection?.acksReady();
          }
        } catch (e) {
          this.ledger.fail(notification.id);
          this.events.emit("error", asError(e, `a notification handler failed on ${notification.id}`));
        }
        this.notifyIdle();
      }
    } finally {
      this.dispatching = false;
    }
  }
  /** Resolves once the application is done with everything it was handed, or the client closed. */
  settled() {
    return new Promise((resolve) => {
      this.idle.push(resolve);
      this.notifyIdle();
    });
  }
  notifyIdle() {
    if (!this.closed && (this.queue.length || this.ledger.pending)) return;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
};
function describeAck(batch) {
  const parts = [];
  if (batch.through !== void 0) parts.push(`through ${batch.through}`);
  const count = batch.ids.length;
  if (count) parts.push(`${count} id${count > 1 ? "s" : ""} (${batch.ids.slice(0, 3).join(", ")}${count > 3 ? ", ..." : ""})`);
  return parts.join(" and ");
}
function asError(e, context) {
  return e instanceof Error ? e : new Error(`${context}: ${String(e)}`);
}

// src/index.ts
function connect(options) {
  return new NotificationClient(options);
}
export {
  ApiError,
  NotificationClient,
  connect
};
