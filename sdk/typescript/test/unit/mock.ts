// A transport the tests drive by hand, and helpers to wait on the client.
import type { AckBatch } from "../../src/ledger.js";
import type { Connection, Ended, Link, TransportFactory } from "../../src/transports/link.js";
import type { Connectivity } from "../../src/online.js";
import type { Notification } from "../../src/types.js";

export class MockConnection implements Connection {
  readonly ended: Promise<Ended>;
  /** Every acknowledgement the client handed this connection to send. */
  readonly sent: AckBatch[] = [];
  closed = false;
  private finish!: (ended: Ended) => void;

  constructor(readonly link: Link) {
    this.ended = new Promise((resolve) => (this.finish = resolve));
  }

  acksReady(): void {
    let batch: AckBatch | null;
    while ((batch = this.link.takeAcks(true))) this.sent.push(batch);
  }

  close(): void {
    this.closed = true;
    this.finish({ kind: "closed" });
  }

  end(ended: Ended): void {
    this.finish(ended);
  }

  /** Opens, then delivers `notifications`. */
  deliver(...notifications: Notification[]): void {
    this.link.opened();
    for (const n of notifications) this.link.receive(n);
  }

  /** Everything acknowledged cumulatively, and by id. */
  get through(): number | undefined {
    return this.sent.reduce<number | undefined>((max, b) => (b.through === undefined ? max : Math.max(max ?? -1, b.through)), undefined);
  }

  get ids(): string[] {
    return this.sent.flatMap((b) => b.ids);
  }
}

/** A transport whose every connection is a MockConnection, kept in order. */
export class MockTransport {
  readonly connections: MockConnection[] = [];
  readonly factory: TransportFactory = (link) => {
    const connection = new MockConnection(link);
    this.connections.push(connection);
    return connection;
  };

  get last(): MockConnection {
    const last = this.connections.at(-1);
    if (!last) throw new Error("no connection yet");
    return last;
  }
}

export function notification(id: string, position: number): Notification {
  return { id, position, payload: { id }, published_at_ms: 0 };
}

/** A device whose connectivity the test sets. */
export class MockConnectivity implements Connectivity {
  online = true;
  private listeners = new Set<(online: boolean) => void>();

  watch(listener: (online: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(online: boolean): void {
    this.online = online;
    for (const listener of this.listeners) listener(online);
  }
}

/** Waits until `condition()` holds, for up to `ms` (a second). */
export async function until(what: string, condition: () => boolean, ms = 1_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
