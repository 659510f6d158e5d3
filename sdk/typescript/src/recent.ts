/**
 * A bounded set of recently seen ids: enough to recognise a notification
 * that comes again after a reconnect, without growing for ever.
 */
export class Recent {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  /** Adds `id`; false if it was there already. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    if (this.ids.size >= this.capacity) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    this.ids.add(id);
    return true;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }
}
