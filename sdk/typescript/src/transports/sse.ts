import { apiError } from "../errors.js";
import type { Notification } from "../types.js";
import { endedBy, endpoint, fetchConnection, Silence } from "./http.js";
import type { Connection, Ended, Link } from "./link.js";
import { SseParser } from "./sse-parser.js";

/**
 * Server-Sent Events, read with fetch rather than EventSource: fetch shows
 * the status of a refused request (a 401 to refresh the token on), sends
 * the token in a header, works in Node, and leaves reconnecting to the
 * client. Acknowledgements go by `POST /v1/ack`. A stream that hears no
 * byte at all (not even a keep-alive comment) for `link.silenceMs` is
 * abandoned as lost, and the client connects again.
 */
export function openSse(link: Link): Connection {
  return fetchConnection(link, true, (signal) => stream(link, signal));
}

async function stream(link: Link, signal: AbortSignal): Promise<Ended> {
  // Any byte (an event, a keep-alive comment every 15 s) shows the service is there.
  const silence = new Silence(signal, link.silenceMs);
  const silent = (): Ended => ({
    kind: "lost",
    reason: `the event stream was silent for ${link.silenceMs / 1000} s (the service sends a keep-alive every 15 s): taken for dead`,
  });
  try {
    let response: Response;
    try {
      response = await silence.guard(
        link.fetch(endpoint(link.base, "/v1/connect/sse", { after: link.after }), {
          headers: { Authorization: `Bearer ${link.token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: silence.signal,
        }),
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
    // The server's last word before it ends the stream.
    let reason = "the event stream ended";
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await silence.guard(reader.read());
      } catch (e) {
        if (!silence.expired) throw e;
        void reader.cancel().catch(() => {});
        return silent();
      }
      const { value, done } = chunk;
      if (done) return { kind: "lost", reason };
      silence.heard();
      for (const event of parser.push(value)) {
        if (event.event === "notification") link.receive(JSON.parse(event.data) as Notification);
        else if (event.event === "error") reason = `the service ended the stream: ${event.data}`;
      }
    }
  } finally {
    silence.stop();
  }
}
