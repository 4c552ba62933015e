// Every error the connector raises on purpose carries a stable `code` (a string literal
// the caller can branch on) and whether retrying the same thing later may succeed.

export class TajoError<C extends string = string> extends Error {
  readonly code: C;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: C, message: string, opts: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TajoError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
