import type { AckBatch } from "../ledger.js";
import type { Notification, WebSocketConstructor } from "../types.js";

/**
 * How long a connection may hear nothing at all before it is taken for
 * dead and made again: five of the server's keep-alives (an SSE comment or a
 * WebSocket ping every 15 s; a long-poll is answered within its wait, at
 * most 60 s), so that a hung server or a peer lost without a TCP close
 * (which leave the connection open and silent for ever) is noticed, and a
 * keep-alive or two lost on a slow network is not. The Rust SDK waits as
 * long (`SILENCE`).
 */
export const SILENCE_MS = 75_000;

/**
 * What a transport's connection reports to, and takes acknowledgements
 * from. The client makes one for each connection; unit tests make their own.
 */
export interface Link {
  /** The service's base URL, without a trailing slash. */
  readonly base: string;
  /** The token this connection opens with. */
  readonly token: string;
  /** Resume after this position. */
  readonly after: number | undefined;
  readonly fetch: typeof fetch;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly pollWaitSecs: number;
  /** SSE and long-polling: how long a request may hear nothing before it is abandoned as lost (SILENCE_MS; shorter in tests). */
  readonly silenceMs: number;
  /** The connection is up. */
  opened(): void;
  /** A notification arrived; they arrive in position order. */
  receive(notification: Notification): void;
  /** The next acknowledgement to send, or null: `cumulative` lets it carry `through`. */
  takeAcks(cumulative: boolean): AckBatch | null;
  /** The service took `batch`. */
  confirmed(batch: AckBatch): void;
  /** `batch` was not taken: it goes again. */
  notTaken(batch: AckBatch, why: unknown): void;
  /** The service refused `batch` for good (`why`): it is not sent again. */
  ackRefused(batch: AckBatch, why: Error): void;
  /** A fresh token, for a request after the connection opened (an acknowledgement, the next poll). */
  freshToken(): Promise<string>;
  /** The service refused `token`. */
  refused(token: string): void;
  /** Long-polling: resolves once the application is done with everything handed over, or the connection is closed. */
  settled(): Promise<void>;
  /** Long-polling: the cursor that acknowledges what the application is done with. */
  ackedThrough(): number | undefined;
  /** Long-polling: a poll with cursor `position` was answered. */
  confirmedThrough(position: number): void;
  /** Whether some handler failed and its notification waits to come again. */
  hasFailures(): boolean;
}

/** How a connection ended. */
export type Ended =
  /** Lost, or never made for a reason that passes (the network, the service restarting): connect again, the same way. */
  | { kind: "lost"; reason: string; retryAfterMs?: number }
  /** This transport cannot connect here (blocked on the way, say): fall back to the next one. */
  | { kind: "unusable"; reason: string }
  /** The token was refused (`401`): a fresh one may help. */
  | { kind: "unauthorized"; reason: string }
  /** Refused for good (a publisher's token, a request the service cannot read). */
  | { kind: "refused"; reason: string }
  /** Closed by the client. */
  | { kind: "closed" };

/** One connection of one transport. */
export interface Connection {
  /** Resolves when the connection ends; never rejects. */
  readonly ended: Promise<Ended>;
  /** Acknowledgements are waiting to be taken. */
  acksReady(): void;
  /** Ends the connection; `ended` resolves with `closed`. */
  close(): void;
}

export type TransportFactory = (link: Link) => Connection;
