import { apiError } from "../errors.js";
import type { Notification } from "../types.js";
import { endedBy, endpoint, fetchConnection, Silence } from "./http.js";
import type { Connection, Ended, Link } from "./link.js";

/** A pause before polling again for a notification whose handler failed, so that it does not spin. */
const AFTER_FAILURE_MS = 1_000;

interface PollAnswer {
  notifications: Notification[];
  next: number | null;
}

/**
 * Long-polling: each poll's `after` cursor acknowledges everything the
 * application is done with, so a poll waits until it is done with what the
 * previous one brought. Acknowledgements the cursor cannot carry (by id,
 * out of order) go by `POST /v1/ack`.
 */
export function openPoll(link: Link): Connection {
  return fetchConnection(link, false, (signal) => loop(link, signal));
}

async function loop(link: Link, signal: AbortSignal): Promise<Ended> {
  let first = true;
  /** The last cursor a poll's answer confirmed. */
  let confirmed = link.after;
  const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  for (;;) {
    // A connection closed meanwhile (offline, or to try a better transport)
    // ends at once, even while the application still holds notifications.
    await Promise.race([link.settled(), aborted]);
    if (link.hasFailures()) await new Promise((resolve) => setTimeout(resolve, AFTER_FAILURE_MS));
    if (signal.aborted) return { kind: "closed" };
    const after = first ? link.after : (link.ackedThrough() ?? link.after);
    const token = first ? link.token : await link.freshToken();
    // A poll is answered within its wait (at most 60 s): one not answered
    // within link.silenceMs (75 s: the wait and at least 15 s more) is
    // taken for dead (a hung service, a peer lost without a TCP close).
    const silence = new Silence(signal, link.silenceMs);
    let answer: PollAnswer;
    try {
      let response: Response;
      try {
        // A poll does not wait when it is the first (it tells at once whether
        // the token is good) or when its cursor acknowledges something: its
        // answer confirms that now rather than when the next notification comes.
        const wait = first || (after !== undefined && after !== confirmed) ? 0 : link.pollWaitSecs;
        response = await silence.guard(
          link.fetch(endpoint(link.base, "/v1/connect/poll", { after, wait }), {
            headers: { Authorization: `Bearer ${token}` },
            cache: "no-store",
            signal: silence.signal,
          }),
        );
        if (!response.ok) {
          const error = await silence.guard(apiError(response));
          if (error.isAuth && !first) link.refused(token);
          return endedBy(error);
        }
        answer = (await silence.guard(response.json())) as PollAnswer;
      } catch (e) {
        if (signal.aborted) return { kind: "closed" };
        if (silence.expired) return { kind: "lost", reason: `a poll was not answered within ${link.silenceMs / 1000} s: taken for dead` };
        return { kind: "lost", reason: `a poll failed: ${String(e)}` };
      }
    } finally {
      silence.stop();
    }
    if (after !== undefined) {
      link.confirmedThrough(after);
      confirmed = after;
    }
    if (first) link.opened();
    first = false;
    for (const notification of answer.notifications) link.receive(notification);
  }
}
