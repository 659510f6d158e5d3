import { apiError } from "../errors.js";
import { ackBody, type AckBatch } from "../ledger.js";
import type { Notification } from "../types.js";
import { ACK_RETRY_MS, endedBy, endpoint } from "./http.js";
import type { Connection, Ended, Link } from "./link.js";

/** Error frames that refuse an `ack` frame for good, instead of `acked`; the connection stays open. */
const ACK_REFUSALS = new Set(["empty_ack", "too_many_ids", "invalid_id", "beyond_sent"]);

/** How long the check of a failed handshake may take. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * WebSocket: notifications and acknowledgements both over the socket. The
 * service answers each `ack` frame in order, with `acked` (or an error
 * frame), which confirms it.
 */
export function openWebSocket(link: Link): Connection {
  const Socket = link.WebSocket;
  if (!Socket) {
    return { ended: Promise.resolve({ kind: "unusable", reason: "there is no WebSocket here" }), acksReady() {}, close() {} };
  }
  const url = endpoint(link.base.replace(/^http/, "ws"), "/v1/connect/ws", { token: link.token, after: link.after });
  let socket: WebSocket;
  try {
    socket = new Socket(url);
  } catch (e) {
    return { ended: Promise.resolve({ kind: "unusable", reason: String(e) }), acksReady() {}, close() {} };
  }
  let opened = false;
  let closing = false;
  /** `ack` frames sent and not yet answered, in order. */
  const unanswered: AckBatch[] = [];
  let reason = "the service closed the connection";
  let flushQueued = false;

  const sendAcks = () => {
    flushQueued = false;
    if (socket.readyState !== 1) return;
    let batch: AckBatch | null;
    while ((batch = link.takeAcks(true))) {
      socket.send(JSON.stringify({ type: "ack", ...ackBody(batch) }));
      unanswered.push(batch);
    }
  };

  const ended = new Promise<Ended>((resolve) => {
    socket.onopen = () => {
      opened = true;
      link.opened();
      sendAcks();
    };
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let frame: { type?: string; code?: string; message?: string };
      try {
        frame = JSON.parse(event.data) as typeof frame;
      } catch {
        return;
      }
      if (frame.type === "notification") {
        link.receive(frame as unknown as Notification);
      } else if (frame.type === "acked") {
        // Its ids the service did not hold follow as `unknown_id`: done all the same.
        const batch = unanswered.shift();
        if (batch) link.confirmed(batch);
      } else if (frame.type === "error" && frame.code && ACK_REFUSALS.has(frame.code)) {
        // Nothing of it was taken, and sending it again would be refused again: it is dropped.
        const batch = unanswered.shift();
        if (batch) link.ackRefused(batch, new Error(`${frame.code}: ${frame.message ?? ""}`));
      } else if (frame.type === "error" && frame.code === "unavailable") {
        // In place of `acked` while the inbox is unreachable (or before a
        // close, which would give the batch back anyway): it goes again later.
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
    socket.onclose = (event: CloseEvent) => {
      for (const batch of unanswered.splice(0)) link.notTaken(batch, new Error("the connection closed"));
      if (closing) return resolve({ kind: "closed" });
      if (opened) return resolve({ kind: "lost", reason: `${reason} (close code ${event.code})` });
      // A handshake that failed tells nothing: ask the service over HTTP why.
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
        socket.close(1000);
      } catch {
        // already closed
      }
    },
  };
}

/**
 * Why a WebSocket handshake failed, from a plain GET of the same URL: the
 * service answers what it would have (401, 503, ...); `not_a_websocket`
 * means it is reachable and takes the token, so something on the way
 * blocks WebSockets; no answer at all means it is not reachable now.
 */
async function probe(link: Link): Promise<Ended> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
  try {
    const response = await link.fetch(endpoint(link.base, "/v1/connect/ws", { token: link.token, after: link.after }), {
      cache: "no-store",
      signal: abort.signal,
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
