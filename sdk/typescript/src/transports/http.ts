import { ApiError, apiError } from "../errors.js";
import { ackBody, type AckBatch } from "../ledger.js";
import type { Connection, Ended, Link } from "./link.js";

/** `base` + `path`, with the query `params` that are defined. */
export function endpoint(base: string, path: string, params: Record<string, string | number | undefined>): string {
  const url = new URL(base + path);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.href;
}

/** How an HTTP error answering a connect request ends the connection. */
export function endedBy(error: ApiError): Ended {
  if (error.isAuth) return { kind: "unauthorized", reason: error.message };
  if (error.isRetryable) {
    return error.retryAfterMs === undefined
      ? { kind: "lost", reason: error.message }
      : { kind: "lost", reason: error.message, retryAfterMs: error.retryAfterMs };
  }
  // The service's own refusals: asking again the same way cannot help.
  if (error.status === 403 || error.code === "invalid_query" || error.code === "invalid_header") {
    return { kind: "refused", reason: error.message };
  }
  // Anything else (404, 405, 426, a proxy's page): this way does not reach the service.
  return { kind: "unusable", reason: error.message };
}

/**
 * A connection made of fetch requests (SSE, long-polling): `run` makes them
 * until the connection ends, and stops when `signal` aborts; what the
 * application is done with goes by `POST /v1/ack` meanwhile, with `through`
 * if `cumulative`.
 */
export function fetchConnection(link: Link, cumulative: boolean, run: (signal: AbortSignal) => Promise<Ended>): Connection {
  const abort = new AbortController();
  const acks = new AckPoster(link, cumulative);
  const ended = run(abort.signal).catch(
    (e: unknown): Ended => (abort.signal.aborted ? { kind: "closed" } : { kind: "lost", reason: String(e) }),
  );
  void ended.then(() => acks.stop());
  return {
    ended,
    acksReady: () => void acks.flush(),
    close: () => abort.abort(),
  };
}

/** Thrown by `Silence.guard` once the request heard nothing for too long. */
export class SilenceError extends Error {
  override name = "SilenceError";
}

/**
 * A request's watchdog (SSE, long-polling): `signal` aborts the request
 * when `outer` aborts (the connection is closed) or when `heard` was not
 * called for `ms` (the service is silent: hung, or its peer lost without a
 * TCP close). `guard` races a step of the request against both, so that it
 * ends even with a fetch or a body that ignores the signal. `stop` when done.
 */
export class Silence {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly stopped: Promise<never>;
  private readonly onOuterAbort = () => this.controller.abort();
  /** Whether the request was abandoned for its silence. */
  expired = false;

  constructor(
    private readonly outer: AbortSignal,
    private readonly ms: number,
  ) {
    this.stopped = new Promise<never>((_, reject) =>
      this.controller.signal.addEventListener("abort", () => reject(this.expired ? new SilenceError(`silent for ${ms} ms`) : outer.reason), { once: true }),
    );
    // Nobody may be guarding when it aborts.
    this.stopped.catch(() => {});
    if (outer.aborted) this.controller.abort();
    else outer.addEventListener("abort", this.onOuterAbort, { once: true });
    this.heard();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Something came: the silence starts again. */
  heard(): void {
    clearTimeout(this.timer);
    if (this.controller.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, this.ms);
  }

  /** `step`, or a rejection as soon as the request is aborted (closed, or silent). */
  guard<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.stopped]);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.outer.removeEventListener("abort", this.onOuterAbort);
  }
}

/** A pause after an acknowledgement that failed, so that a service that is away is not hammered. */
export const ACK_RETRY_MS = 1_000;

/**
 * Whether an error answering `POST /v1/ack` refuses the acknowledgement for
 * good: a client error that asking again the same way cannot change (403,
 * `invalid_body`, `empty_ack`, `beyond_sent`, `invalid_id`, `too_many_ids`,
 * `body_too_large`, a proxy's 404, ...). Not a 401 (a fresh token may
 * help), 408 or 429 (the service is busy), nor `unreadable_body` (the
 * connection broke on the way): those go again. (`unknown_id` is neither:
 * it means done.)
 */
export function ackRefusedForGood(error: ApiError): boolean {
  return error.status >= 400 && error.status < 500 && !error.isAuth && !error.isRetryable && error.code !== "unreadable_body";
}

/**
 * Sends acknowledgements by `POST /v1/ack`, one request at a time: what the
 * application finishes meanwhile goes in the next one, mostly as one
 * cumulative `through`.
 */
export class AckPoster {
  private posting = false;
  private stopped = false;

  constructor(
    private readonly link: Link,
    private readonly cumulative: boolean,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Sends what is waiting, unless a request is already under way (it sends the rest after). */
  async flush(): Promise<void> {
    if (this.posting) return;
    this.posting = true;
    try {
      let batch: AckBatch | null;
      while (!this.stopped && (batch = this.link.takeAcks(this.cumulative))) {
        if (!(await this.post(batch))) {
          await new Promise((resolve) => setTimeout(resolve, ACK_RETRY_MS));
        }
      }
    } finally {
      this.posting = false;
    }
  }

  /** Posts `batch`; false if it should be tried again later, true once it is taken or refused for good. */
  private async post(batch: AckBatch): Promise<boolean> {
    let token = "";
    try {
      token = await this.link.freshToken();
      const response = await this.link.fetch(`${this.link.base}/v1/ack`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(ackBody(batch)),
      });
      if (response.ok) {
        await response.body?.cancel();
        this.link.confirmed(batch);
        return true;
      }
      const error = await apiError(response);
      // An id the service does not hold is done; the others were taken all the same.
      if (error.code === "unknown_id") {
        this.link.confirmed(batch);
        return true;
      }
      // Dropped, as over a WebSocket: sent again every second, it would be refused for ever.
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
}
