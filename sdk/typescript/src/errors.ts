/** An HTTP answer that is not 2xx, with the API's `{"error":{"code","message","field"}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  /** From `Retry-After`, when the service sent one. */
  readonly retryAfterMs?: number;

  constructor(status: number, body: unknown, retryAfter?: string | null) {
    const error = (body as { error?: { code?: string; message?: string; field?: string } } | null)?.error ?? {};
    const code = error.code ?? `http_${status}`;
    super(`${status} ${code}${error.field ? ` (${error.field})` : ""}: ${error.message ?? "no details"}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    if (error.field) this.field = error.field;
    const seconds = retryAfter ? Number(retryAfter) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) this.retryAfterMs = seconds * 1000;
  }

  /** The token was refused: a fresh one may help. */
  get isAuth(): boolean {
    return this.status === 401;
  }

  /** Worth trying again later (the service is busy or away), as opposed to a request that is wrong. */
  get isRetryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** Reads a non-2xx response into an ApiError. */
export async function apiError(response: Response): Promise<ApiError> {
  const body: unknown = await response.json().catch(() => null);
  return new ApiError(response.status, body, response.headers.get("retry-after"));
}
