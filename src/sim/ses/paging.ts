import { randomBytes } from 'node:crypto';

interface TokenState {
  scope: string;
  offset: number;
  issuedAt: number;
}

/**
 * NextTokens are opaque server-side cursors so that a client cannot build or edit one,
 * and so that they can expire like SES tokens do. A token stays valid for repeated use
 * until it expires: a client retrying a page after a 429 resends the same token.
 */
export class TokenRegistry {
  private tokens = new Map<string, TokenState>();

  constructor(
    private readonly now: () => number,
    public ttlMs: number,
  ) {}

  issue(scope: string, offset: number): string {
    if (this.tokens.size > 10_000) this.prune();
    const token = randomBytes(32).toString('base64');
    this.tokens.set(token, { scope, offset, issuedAt: this.now() });
    return token;
  }

  /** The offset the token points at, or an explanation of why it cannot be used. */
  resume(token: string, scope: string): { offset: number } | { invalid: string } {
    const state = this.tokens.get(token);
    if (!state) return { invalid: 'The NextToken is invalid or has expired.' };
    if (this.now() - state.issuedAt >= this.ttlMs) {
      this.tokens.delete(token);
      return { invalid: 'The NextToken has expired.' };
    }
    if (state.scope !== scope) return { invalid: 'The NextToken was issued for a request with different parameters.' };
    return { offset: state.offset };
  }

  expireAll(): void {
    this.tokens.clear();
  }

  private prune(): void {
    const now = this.now();
    for (const [token, state] of this.tokens) {
      if (now - state.issuedAt >= this.ttlMs) this.tokens.delete(token);
    }
  }
}

/** One bucket for the whole account: SES limits control-plane calls per account and region, not per operation. */
export class TokenBucket {
  private capacity = 1;
  private tokens = 1;
  private last = 0;
  private rate = 1;

  constructor(
    private readonly now: () => number,
    rps: number,
  ) {
    this.setRate(rps);
  }

  setRate(rps: number): void {
    if (!(rps > 0)) throw new Error(`ses-sim: rps must be > 0 (Infinity disables throttling), got ${rps}`);
    this.rate = rps;
    // A burst of one second's worth, at least one call, mirrors how SES lets a 1 rps caller make its first call at once.
    this.capacity = Number.isFinite(rps) ? Math.max(1, rps) : Infinity;
    this.tokens = this.capacity;
    this.last = this.now();
  }

  take(): boolean {
    if (this.rate === Infinity) return true;
    const now = this.now();
    // An injected test clock may step backwards; never let that drain the bucket.
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}
