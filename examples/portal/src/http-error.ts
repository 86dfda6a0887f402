/** An error with the HTTP status and the message the visitor sees. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Seconds to wait before trying again, sent as `Retry-After` (a 429 or 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
