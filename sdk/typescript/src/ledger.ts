import { Recent } from "./recent.js";

/**
 * What the client received and what became of each: the source of its
 * acknowledgements, of its de-duplication and of the position it resumes
 * after.
 *
 * A notification is `pending` while the application has it, `acked` once
 * the application is done with it (the acknowledgement is sent, or waits
 * for a connection), `confirmed` once the service answered that
 * acknowledgement, and `failed` when a handler threw: then it is neither
 * acknowledged nor passed over, so it comes again on a later connection.
 *
 * A connection resumes after the confirmed prefix, not after the last
 * position seen: an acknowledgement lost with a connection would otherwise
 * leave its notification held by the service and never sent again.
 * Confirmed notifications are dropped (their ids remembered) even behind
 * one that is not: a handler that keeps failing on one must not make the
 * ledger grow with everything after it.
 */
type EntryState = "pending" | "acked" | "confirmed" | "failed";

interface Entry {
  id: string;
  position: number;
  state: EntryState;
  /** The connection that last received it: a WebSocket's `through` covers only what its own connection was sent. */
  conn: number;
  /** Whether its id went out in an acknowledgement not yet answered. */
  idSent: boolean;
}

/** The most ids one acknowledgement may carry. */
const MAX_IDS = 1000;

/** One acknowledgement: everything through a position, and ids. */
export interface AckBatch {
  through?: number;
  ids: string[];
  /** The connection it was made for. */
  conn: number;
}

/** `batch` as the protocol carries it, in a WebSocket `ack` frame or a `POST /v1/ack` body: `ids` only when there are some. */
export function ackBody(batch: AckBatch): { through?: number; ids?: string[] } {
  const body: { through?: number; ids?: string[] } = {};
  if (batch.through !== undefined) body.through = batch.through;
  if (batch.ids.length) body.ids = batch.ids;
  return body;
}

export class Ledger {
  /** By position; what is confirmed is pruned into `done`, and the confirmed prefix into `base`. */
  private entries: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  /** Ids confirmed and pruned, for de-duplication. */
  private readonly done = new Recent();
  /** Everything up to here is confirmed (or was before this client); some beyond it may be too, pruned into `done`. */
  private base: number | undefined;
  private conn = 0;
  /** The largest position the current connection was sent. */
  private maxSent: number | undefined;
  /** The last `through` sent on the current connection. */
  private throughSent: number | undefined;

  constructor(after?: number) {
    this.base = after;
  }

  /** The position to resume after: everything up to it is acknowledged and confirmed. */
  get resumeAfter(): number | undefined {
    // Confirmed entries are pruned at once: what is held is not confirmed.
    return this.base;
  }

  /** The largest position up to which the application is done with everything. */
  get ackedThrough(): number | undefined {
    let through = this.base;
    for (const entry of this.entries) {
      if (entry.state !== "acked" && entry.state !== "confirmed") break;
      through = entry.position;
    }
    return through;
  }

  /** How many the application has not finished with. */
  get pending(): number {
    let count = 0;
    for (const entry of this.entries) if (entry.state === "pending") count++;
    return count;
  }

  /** How many notifications it holds: those not yet confirmed. */
  get held(): number {
    return this.entries.length;
  }

  /** How many wait to come again because a handler failed on them. */
  get failed(): number {
    let count = 0;
    for (const entry of this.entries) if (entry.state === "failed") count++;
    return count;
  }

  /** A new connection begins: what it is sent is counted afresh, and acknowledgements not confirmed go again. */
  newConnection(): void {
    this.conn++;
    this.maxSent = undefined;
    this.throughSent = undefined;
    for (const entry of this.entries) if (entry.state === "acked") entry.idSent = false;
  }

  /** Records a notification the current connection received; `"new"` if the application should have it. */
  receive(id: string, position: number): "new" | "duplicate" {
    this.maxSent = this.maxSent === undefined ? position : Math.max(this.maxSent, position);
    const entry = this.byId.get(id);
    if (entry && entry.state !== "failed") {
      // The service still holds it: it is acknowledged again, on this connection.
      entry.conn = this.conn;
      if (entry.state === "confirmed") entry.state = "acked";
      entry.idSent = false;
      return "duplicate";
    }
    if (this.base !== undefined && position <= this.base) {
      // Confirmed long ago, yet sent again: let `through` cover it once more.
      this.throughSent = undefined;
      return "duplicate";
    }
    if (this.done.has(id)) {
      // Confirmed and pruned behind one that is not (so `through` may not
      // reach it), yet sent again: it is acknowledged again, on this connection.
      this.insert({ id, position, state: "acked", conn: this.conn, idSent: false });
      return "duplicate";
    }
    if (entry) {
      entry.state = "pending";
      entry.conn = this.conn;
      return "new";
    }
    this.insert({ id, position, state: "pending", conn: this.conn, idSent: false });
    return "new";
  }

  /** Adds `entry` in position order. */
  private insert(entry: Entry): void {
    this.byId.set(entry.id, entry);
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1]!.position > entry.position) at--;
    this.entries.splice(at, 0, entry);
  }

  /** The application is done with `id`; false if no such notification is held. */
  settle(id: string): boolean {
    const entry = this.byId.get(id);
    if (!entry || entry.state === "acked" || entry.state === "confirmed") return false;
    entry.state = "acked";
    entry.idSent = false;
    return true;
  }

  /** A handler failed on `id`: it stays unacknowledged, and is handed over again when it comes again. */
  fail(id: string): void {
    const entry = this.byId.get(id);
    if (entry && entry.state === "pending") entry.state = "failed";
  }

  /**
   * The acknowledgement to send now, or null: `through` (if `cumulative`)
   * up to what the current connection was sent, and by id whatever that
   * does not cover. Without `cumulative` (long-polling, whose next poll's
   * cursor acknowledges the prefix), only what lies beyond the prefix.
   */
  take(cumulative: boolean): AckBatch | null {
    let through: number | undefined;
    if (cumulative) {
      const done = this.ackedThrough;
      const candidate = done === undefined || this.maxSent === undefined ? undefined : Math.min(done, this.maxSent);
      if (candidate !== undefined && (this.throughSent === undefined || candidate > this.throughSent)) {
        through = candidate;
        this.throughSent = candidate;
      }
    }
    const covered = cumulative ? this.throughSent : undefined;
    // Without `through`, the cursor of a poll carries the acknowledged prefix.
    const cursor = cumulative ? undefined : this.ackedThrough;
    const ids: string[] = [];
    for (const entry of this.entries) {
      if (entry.state !== "acked" || entry.idSent) continue;
      if (covered !== undefined && entry.conn === this.conn && entry.position <= covered) continue;
      if (cursor !== undefined && entry.position <= cursor) continue;
      entry.idSent = true;
      ids.push(entry.id);
      // The protocol's limit for one acknowledgement; the rest go in the next.
      if (ids.length === MAX_IDS) break;
    }
    if (through === undefined && ids.length === 0) return null;
    return through === undefined ? { ids, conn: this.conn } : { through, ids, conn: this.conn };
  }

  /** The service answered `batch`: its notifications are done. Returns the ids confirmed now. */
  confirm(batch: AckBatch): string[] {
    const ids = new Set(batch.ids);
    const confirmed: string[] = [];
    for (const entry of this.entries) {
      if (entry.state !== "acked") continue;
      const byThrough = batch.through !== undefined && entry.conn === batch.conn && entry.position <= batch.through;
      if (byThrough || ids.has(entry.id)) {
        entry.state = "confirmed";
        confirmed.push(entry.id);
      }
    }
    this.prune();
    return confirmed;
  }

  /** A poll's cursor was accepted: everything acknowledged through it is done, whichever connection had it. */
  confirmThrough(position: number): string[] {
    const confirmed: string[] = [];
    for (const entry of this.entries) {
      if (entry.position > position) break;
      if (entry.state === "acked") {
        entry.state = "confirmed";
        confirmed.push(entry.id);
      }
    }
    this.prune();
    return confirmed;
  }

  /**
   * `batch` was not taken (the request failed): it goes again. A batch the
   * service refused for good is not given back: its notifications stay
   * unconfirmed, so they go again by id on the next connection, or by
   * `through` once they come again.
   */
  retry(batch: AckBatch): void {
    for (const id of batch.ids) {
      const entry = this.byId.get(id);
      if (entry?.state === "acked") entry.idSent = false;
    }
    if (batch.through !== undefined && batch.conn === this.conn) this.throughSent = undefined;
  }

  /**
   * Drops what is confirmed, remembering its ids; `base` moves over the
   * confirmed prefix only, so that a connection resumes before a
   * notification that is not (one a handler failed on, say).
   */
  private prune(): void {
    let prefix = true;
    const kept: Entry[] = [];
    for (const entry of this.entries) {
      if (entry.state !== "confirmed") {
        prefix = false;
        kept.push(entry);
        continue;
      }
      this.done.add(entry.id);
      this.byId.delete(entry.id);
      if (prefix) this.base = entry.position;
    }
    if (kept.length !== this.entries.length) this.entries = kept;
  }
}
