/** A notification, as every transport carries it (docs/protocol.md, "The notification envelope"). */
export interface Notification<Payload = unknown> {
  /** The publisher's idempotency key, or a UUIDv7: de-duplicate and acknowledge by it. */
  id: string;
  /** Its place in the recipient's sequence: later notifications have larger positions. */
  position: number;
  /** The publisher's optional label. */
  kind?: string;
  /** The publisher's JSON, exactly as published. */
  payload: Payload;
  /** When the service accepted it, in milliseconds since the Unix epoch. */
  published_at_ms: number;
}

/** The transports, in the protocol's names: WebSocket, Server-Sent Events, long-polling. */
export type TransportName = "ws" | "sse" | "poll";

/** Where the client is; `on("state", ...)` hears every change. */
export type ClientState =
  | { state: "connecting"; transport: TransportName }
  | { state: "connected"; transport: TransportName }
  /** Waiting `delayMs` before the next attempt, because of `reason`. */
  | { state: "reconnecting"; delayMs: number; reason: string }
  /** The browser says it is offline: the client waits for its `online` event. */
  | { state: "offline" }
  /** `close()` was called, or the service refused the client for good (see `reason`). */
  | { state: "closed"; reason?: string };

/** What the service confirmed as acknowledged: those ids are not delivered again. */
export interface Acked {
  ids: string[];
}

export interface ClientOptions {
  /** The service's base URL (a distributor's, or `notifd standalone`'s), e.g. `https://notify.example.com`. */
  url: string;
  /** A client JWT whose `sub` is the recipient. Give this or `getToken`. */
  token?: string | undefined;
  /**
   * Called for a token whenever the client needs one and has none that is
   * fresh: at the start, before the current one expires, and after the
   * service refused one (`401`).
   */
  getToken?: (() => string | Promise<string>) | undefined;
  /** The transports to use, best first (default `["ws", "sse", "poll"]`). */
  transports?: TransportName[];
  /**
   * `"auto"` (default): a notification is acknowledged once every
   * notification handler has resolved for it. `"manual"`: only by `ack(id)`.
   */
  ack?: "auto" | "manual";
  /** The wait before reconnecting: `initialMs` (500) doubling to `maxMs` (30 000), each wait a random time between half of it and all of it. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** After falling back to a lesser transport, how long to stay on it before trying the better one again (default 60 000 ms). */
  retryPreferredAfterMs?: number;
  /** Seconds a long-poll waits on the service for a first notification (default 25, at most 60). */
  pollWaitSecs?: number;
  /** The WebSocket constructor, where there is no global one (Node 20 without `--experimental-websocket`: the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** The fetch function, if not the global one. */
  fetch?: typeof fetch;
}

export type WebSocketConstructor = new (url: string) => WebSocket;
