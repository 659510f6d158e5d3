/**
 * The client's token: a fixed one, or one from `getToken`, fetched again
 * before it expires and after the service refused it.
 */
export class TokenSource {
  private current: string | undefined;
  /** When the current token stops being fresh (ms since the epoch), if it says when it expires. */
  private refreshAt = Infinity;
  private fetching: Promise<string> | undefined;

  constructor(
    token: string | undefined,
    private readonly getToken: (() => string | Promise<string>) | undefined,
    private readonly now: () => number = Date.now,
  ) {
    if (token) this.set(token);
    if (!token && !getToken) throw new TypeError("connect() needs a token or getToken");
  }

  /** Whether a refused token can be replaced. */
  get refreshable(): boolean {
    return this.getToken !== undefined;
  }

  /** A token that is fresh, fetching one if needed. */
  async get(): Promise<string> {
    if (this.current !== undefined && (this.now() < this.refreshAt || !this.getToken)) return this.current;
    return this.fetch();
  }

  /** The service refused `token`: the next `get` fetches another. */
  refused(token: string): void {
    if (token === this.current && this.getToken) {
      this.current = undefined;
      this.refreshAt = Infinity;
    }
  }

  private fetch(): Promise<string> {
    const getToken = this.getToken;
    if (!getToken) return Promise.reject(new Error("no token"));
    // Callers at the same moment share one call of getToken.
    if (!this.fetching) {
      const fetching = (async () => {
        const token = await getToken();
        if (typeof token !== "string" || token === "") throw new TypeError("getToken gave no token");
        this.set(token);
        return token;
      })();
      this.fetching = fetching;
      const done = () => {
        if (this.fetching === fetching) this.fetching = undefined;
      };
      fetching.then(done, done);
    }
    return this.fetching;
  }

  /** Keeps `token`, to be refreshed when a fifth of its life is left (at most a minute before it expires). */
  private set(token: string): void {
    this.current = token;
    const expires = expiry(token);
    if (expires === undefined) {
      this.refreshAt = Infinity;
      return;
    }
    const now = this.now();
    const margin = Math.min(60_000, Math.max(0, (expires - now) / 5));
    this.refreshAt = expires - margin;
  }
}

/** A JWT's `exp` in ms since the epoch, if it is a JWT with one. */
export function expiry(token: string): number | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const claims: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
