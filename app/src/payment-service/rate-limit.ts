/**
 * A token bucket per user, in this process's memory: `burst` payments at once, refilled at
 * `perMinute`. Per pod by design: payment-service has no shared store (Redis belongs to
 * fraud-service), and a check that needs a network round trip would cost every payment a
 * dependency. With N replicas behind the Service a user gets at most N × the limit; the
 * limit is there to stop floods, and a flood spread over the pods is stopped on each.
 */
export interface RateLimitSettings {
  readonly perMinute: number;
  readonly burst: number;
  /** Buckets kept at most; past it the idle (full) ones are dropped first. Default 100 000. */
  readonly maxUsers?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class PerUserRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly maxUsers: number;

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = settings.perMinute / 60_000;
    this.maxUsers = settings.maxUsers ?? 100_000;
  }

  /** Takes a token for `user`: 0 when allowed, else the whole seconds until one is free (Retry-After). */
  take(user: string): number {
    const now = this.now();
    let bucket = this.buckets.get(user);
    if (!bucket) {
      if (this.buckets.size >= this.maxUsers) this.evict(now);
      bucket = { tokens: this.settings.burst, at: now };
      this.buckets.set(user, bucket);
    } else {
      bucket.tokens = Math.min(this.settings.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  get users(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [user, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.settings.burst) this.buckets.delete(user);
    }
    // Everyone busy: drop the longest-known users (Map order) down to 90 %.
    for (const user of this.buckets.keys()) {
      if (this.buckets.size < this.maxUsers * 0.9) break;
      this.buckets.delete(user);
    }
  }
}
