import { apiError } from "../errors.js";
import type { Notification } from "../types.js";
import { endedBy, endpoint, fetchConnection } from "./http.js";
import type { Connection, Ended, Link } from "./link.js";
import { SseParser } from "./sse-parser.js";

/**
 * Server-Sent Events, read with fetch rather than EventSource: fetch shows
 * the status of a refused request (a 401 to refresh the token on), sends
 * the token in a header, works in Node, and leaves reconnecting to the
 * client. Acknowledgements go by `POST /v1/ack`.
 */
export function openSse(link: Link): Connection {
  return fetchConnection(link, true, (signal) => stream(link, signal));
}

async function stream(link: Link, signal: AbortSignal): Promise<Ended> {
  let response: Response;
  try {
    response = await link.fetch(endpoint(link.base, "/v1/connect/sse", { after: link.after }), {
      headers: { Authorization: `Bearer ${link.token}`, Accept: "text/event-stream" },
      cache: "no-store",
      signal,
    });
  } catch (e) {
    return signal.aborted ? { kind: "closed" } : { kind: "lost", reason: `the event stream could not be opened: ${String(e)}` };
  }
  if (!response.ok) return endedBy(await apiError(response));
  if (!response.body) return { kind: "unusable", reason: "the event stream has no body" };
  link.opened();
  const parser = new SseParser();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  // The server's last word before it ends the stream.
  let reason = "the event stream ended";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { kind: "lost", reason };
    for (const event of parser.push(value)) {
      if (event.event === "notification") link.receive(JSON.parse(event.data) as Notification);
      else if (event.event === "error") reason = `the service ended the stream: ${event.data}`;
    }
  }
}
