import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { Ledger, type AckBatch } from "./ledger.js";
import { browserConnectivity, type Connectivity } from "./online.js";
import { TokenSource } from "./token.js";
import { SILENCE_MS, type Connection, type Ended, type Link, type TransportFactory } from "./transports/link.js";
import { openPoll } from "./transports/poll.js";
import { openSse } from "./transports/sse.js";
import { openWebSocket } from "./transports/ws.js";
import type { Acked, ClientOptions, ClientState, Notification, TransportName, WebSocketConstructor } from "./types.js";

/** The client's events and what their listeners are given. */
export type ClientEvents = {
  /** A notification, in order and once. Acknowledged when every such listener has resolved (`ack: "auto"`). */
  notification: [notification: Notification];
  state: [state: ClientState];
  /** The service confirmed these acknowledgements. */
  acked: [acked: Acked];
  /** Something went wrong that the client recovers from (a handler threw, an acknowledgement was refused) or, with state `closed`, does not. */
  error: [error: Error];
};

/** What tests replace: the transports, the clock's randomness, connectivity, how long a connection may be silent. */
export interface Internals {
  transports?: Partial<Record<TransportName, TransportFactory>>;
  connectivity?: Connectivity;
  random?: () => number;
  now?: () => number;
  silenceMs?: number;
}

const FACTORIES: Record<TransportName, TransportFactory> = { ws: openWebSocket, sse: openSse, poll: openPoll };

/** Why the client itself ended the current connection. */
type Interrupt = "close" | "offline" | "upgrade";

/**
 * One recipient's notifications over the best transport that works:
 * connects, reconnects with backoff, falls back and later tries the better
 * transport again, resumes, de-duplicates, hands each notification to the
 * application in order and acknowledges it.
 */
export class NotificationClient {
  private readonly events = new Emitter<ClientEvents>();
  private readonly ledger: Ledger;
  private readonly tokens: TokenSource;
  private readonly base: string;
  private readonly order: TransportName[];
  private readonly factories: Record<TransportName, TransportFactory>;
  private readonly connectivity: Connectivity;
  private readonly random: () => number;
  private readonly silenceMs: number;
  private readonly fetch: typeof fetch;
  private readonly WebSocket: WebSocketConstructor | undefined;
  private current: ClientState = { state: "connecting", transport: "ws" };
  private connection: Connection | undefined;
  private interrupt: Interrupt | undefined;
  /** Wakes the loop from a wait (closed, back online). */
  private wake: (() => void) | undefined;
  /** Received and not yet handed to the application, in order. */
  private readonly queue: Notification[] = [];
  private dispatching = false;
  /** Waiters for the application to be done with everything (long-polling). */
  private idle: (() => void)[] = [];

  constructor(
    private readonly options: ClientOptions,
    internals: Internals = {},
  ) {
    if (!options.url) throw new TypeError("connect() needs the service's url");
    this.base = options.url.replace(/\/+$/, "");
    this.tokens = new TokenSource(options.token, options.getToken, internals.now);
    this.order = [...new Set<TransportName>(options.transports ?? ["ws", "sse", "poll"])];
    if (!this.order.length || this.order.some((t) => !(t in FACTORIES))) {
      throw new TypeError(`transports must be some of "ws", "sse", "poll": got ${JSON.stringify(options.transports)}`);
    }
    this.factories = { ...FACTORIES, ...internals.transports };
    this.connectivity = internals.connectivity ?? browserConnectivity;
    this.random = internals.random ?? Math.random;
    this.silenceMs = internals.silenceMs ?? SILENCE_MS;
    this.fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.ledger = new Ledger();
    this.current = { state: "connecting", transport: this.order[0]! };
    // Listeners are added right after connect() returns: start after them.
    queueMicrotask(() => void this.run());
  }

  /** Listens to `event`; returns a function that stops listening. */
  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => unknown): () => void {
    const off = this.events.on(event, listener);
    if (event === "notification") void this.dispatch();
    return off;
  }

  /** The current state. */
  get state(): ClientState {
    return this.current;
  }

  /** The position the next connection resumes after: everything up to it is acknowledged and confirmed. */
  get position(): number | undefined {
    return this.ledger.resumeAfter;
  }

  /** Acknowledges a notification this client received (with `ack: "manual"`, the only way it is). */
  ack(id: string): void {
    if (this.ledger.settle(id)) {
      this.notifyIdle();
      this.connection?.acksReady();
    }
  }

  /** Closes the connection for good. Acknowledgements not yet sent are dropped: those notifications come again to the next client. */
  close(): void {
    if (this.interrupt === "close") return;
    this.interrupt = "close";
    this.connection?.close();
    this.wake?.();
    this.notifyIdle();
    this.setState({ state: "closed" });
  }

  private get closed(): boolean {
    return this.interrupt === "close";
  }

  private setState(state: ClientState): void {
    if (this.current.state === "closed") return;
    this.current = state;
    this.events.emit("state", state);
  }

  /** Connects, and connects again, until closed. */
  private async run(): Promise<void> {
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
    /** Attempts in a row on this transport that found it unusable. */
    let unusable = 0;
    try {
      while (!this.closed) {
        if (!this.connectivity.online) {
          this.setState({ state: "offline" });
          await this.sleep(Infinity);
          failures = 0;
          continue;
        }
        const transport = this.order[index]!;
        this.setState({ state: "connecting", transport });
        let token: string;
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
        if (this.interrupt !== "close") this.interrupt = undefined;
        if (ended.kind === "closed") {
          if (interrupt === "upgrade") index = 0;
          continue;
        }
        if (ended.kind === "unauthorized") {
          this.tokens.refused(token);
          if (!this.tokens.refreshable) return this.fail(`the service refused the token: ${ended.reason}`);
          // A fresh token at once; if that is refused too, wait.
          if (++authFailures > 1) await this.backoff(++failures, ended.reason);
          continue;
        }
        if (ended.kind === "refused") return this.fail(`the service refused the connection: ${ended.reason}`);
        if (ended.kind === "unusable") {
          // Once more at once (the service may have come up between the
          // attempt and the check of why it failed); then the next
          // transport at once; once every one failed, the best again after a wait.
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
  private async connect(transport: TransportName, token: string, fallback: boolean): Promise<{ ended: Ended; connected: boolean }> {
    this.ledger.newConnection();
    let connected = false;
    let upgrade: ReturnType<typeof setTimeout> | undefined;
    const link: Link = {
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
          // Now and then, try the better transport again.
          upgrade = setTimeout(() => {
            this.interrupt ??= "upgrade";
            this.connection?.close();
          }, this.options.retryPreferredAfterMs ?? 60_000);
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
        // Not given back to the ledger: its notifications stay unconfirmed, and are acknowledged again on a later connection.
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
      hasFailures: () => this.ledger.failed > 0,
    };
    let connection: Connection;
    try {
      connection = this.factories[transport](link);
    } catch (e) {
      // A URL that cannot be made, say: no way of connecting will do better.
      return { ended: { kind: "refused", reason: String(e) }, connected };
    }
    this.connection = connection;
    // An interrupt that came while connecting.
    if (this.interrupt) connection.close();
    try {
      return { ended: await connection.ended, connected };
    } finally {
      clearTimeout(upgrade);
      this.connection = undefined;
    }
  }

  /** Waits before the next attempt, telling the application how long; returns early when closed or back online. */
  private async backoff(attempt: number, reason: string, atLeastMs = 0): Promise<void> {
    if (this.closed) return;
    const { initialMs = 500, maxMs = 30_000 } = this.options.backoff ?? {};
    const delayMs = Math.max(atLeastMs, backoffDelay(attempt, initialMs, maxMs, this.random));
    this.setState({ state: "reconnecting", delayMs, reason });
    await this.sleep(delayMs);
  }

  /** Sleeps `ms`, or until woken: closed, or the device went online or offline. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      this.wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => (this.wake = undefined));
  }

  private fail(reason: string): void {
    this.events.emit("error", new Error(reason));
    this.interrupt = "close";
    this.setState({ state: "closed", reason });
  }

  /** A notification from the connection: new ones are handed over in order, duplicates acknowledged again if they were before. */
  private receive(notification: Notification): void {
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
  private async dispatch(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.queue.length && this.events.of("notification").length) {
        const notification = this.queue.shift()!;
        try {
          await Promise.all(this.events.of("notification").map(async (handler) => handler(notification)));
          if ((this.options.ack ?? "auto") === "auto" && this.ledger.settle(notification.id)) {
            this.connection?.acksReady();
          }
        } catch (e) {
          // Not acknowledged: the service sends it again (after its acknowledgement timeout, on the next connection).
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
  private settled(): Promise<void> {
    return new Promise((resolve) => {
      this.idle.push(resolve);
      this.notifyIdle();
    });
  }

  private notifyIdle(): void {
    if (!this.closed && (this.queue.length || this.ledger.pending)) return;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
}

/** What `batch` acknowledges, for a message: `through 7 and 2 ids (a, b)`. */
function describeAck(batch: AckBatch): string {
  const parts: string[] = [];
  if (batch.through !== undefined) parts.push(`through ${batch.through}`);
  const count = batch.ids.length;
  if (count) parts.push(`${count} id${count > 1 ? "s" : ""} (${batch.ids.slice(0, 3).join(", ")}${count > 3 ? ", ..." : ""})`);
  return parts.join(" and ");
}

function asError(e: unknown, context: string): Error {
  return e instanceof Error ? e : new Error(`${context}: ${String(e)}`);
}
