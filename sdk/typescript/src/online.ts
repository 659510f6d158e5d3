/** Whether the device is online, and a wait for it to be: the browser's `navigator.onLine` and `online`/`offline` events; elsewhere, always online. */
export interface Connectivity {
  readonly online: boolean;
  /** Calls `listener` with each change; returns the unsubscribe. */
  watch(listener: (online: boolean) => void): () => void;
}

export const browserConnectivity: Connectivity = {
  get online() {
    const nav = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
    return typeof nav?.onLine === "boolean" ? nav.onLine : true;
  },
  watch(listener) {
    const target = globalThis as unknown as Partial<EventTarget>;
    if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") return () => {};
    const online = () => listener(true);
    const offline = () => listener(false);
    target.addEventListener("online", online);
    target.addEventListener("offline", offline);
    return () => {
      target.removeEventListener?.("online", online);
      target.removeEventListener?.("offline", offline);
    };
  },
};
