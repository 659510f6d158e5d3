/** A minimal typed event emitter: listeners by event name, errors in one listener kept from the others. */
export class Emitter<Events extends Record<string, unknown[]>> {
  private readonly listeners = new Map<keyof Events, Set<(...args: never[]) => unknown>>();

  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => unknown): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (...args: never[]) => unknown);
    return () => void set.delete(listener as (...args: never[]) => unknown);
  }

  /** The listeners of `event`, as they are now. */
  of<E extends keyof Events>(event: E): ((...args: Events[E]) => unknown)[] {
    return [...(this.listeners.get(event) ?? [])] as unknown as ((...args: Events[E]) => unknown)[];
  }

  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of this.of(event)) {
      try {
        void listener(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
