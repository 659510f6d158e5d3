/**
 * The client SDK of SaaSaparilla Notifications: one recipient's
 * notifications in a browser or in Node, over WebSocket, Server-Sent Events
 * or long-polling, in order, each once, acknowledged. docs/protocol.md is
 * the protocol it speaks.
 */
import { NotificationClient } from "./client.js";
import type { ClientOptions } from "./types.js";

export { NotificationClient } from "./client.js";
export type { ClientEvents } from "./client.js";
export { ApiError } from "./errors.js";
export type { Acked, ClientOptions, ClientState, Notification, TransportName, WebSocketConstructor } from "./types.js";

/** Connects as the recipient the token names; see {@link ClientOptions}. */
export function connect(options: ClientOptions): NotificationClient {
  return new NotificationClient(options);
}
