/**
 * Sender history in Redis: a payment counter per sender and fixed time window, and the
 * set of devices a sender has paid from. Both expire.
 *
 * dd-trace's ioredis spans record each command with its arguments (`redis.raw_command`)
 * and offer no way to hide them, so the arguments themselves carry no personal data:
 * keys and set members are truncated SHA-256 digests of the sender and device ids.
 */
import { createHash } from "node:crypto";
import Redis from "ioredis";
import type { DeviceHistory } from "./scoring";

export interface RedisSettings {
  readonly url: string;
  /** Prepended to every key (ioredis `keyPrefix`). */
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

export function createRedis(settings: RedisSettings): Redis {
  return new Redis(settings.url, {
    keyPrefix: settings.keyPrefix,
    commandTimeout: settings.commandTimeoutMs,
    // Fail fast while disconnected instead of queueing: scoring degrades, it does not wait.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // CLIENT SETINFO exists from Redis 7.2; older servers answer every connection with an
    // error, which the tracer records as error spans.
    disableClientInfo: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

export interface SenderHistory {
  readonly paymentsInWindow: number;
  readonly device: DeviceHistory;
}

export interface HistorySettings {
  readonly velocityWindowSeconds: number;
  readonly deviceMemorySeconds: number;
}

export function pseudonym(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 32);
}

/** Counts this payment and remembers its device, in one round trip (MULTI/EXEC). */
export async function recordAndReadHistory(
  redis: Redis,
  settings: HistorySettings,
  senderId: string,
  device: { id: string; fingerprint: string } | undefined,
  now: number = Date.now(),
): Promise<SenderHistory> {
  const sender = pseudonym(`sender:${senderId}`);
  const window = Math.floor(now / 1000 / settings.velocityWindowSeconds);
  const velocityKey = `velocity:${sender}:${window}`;
  const devicesKey = `devices:${sender}`;

  const multi = redis.multi().incr(velocityKey).expire(velocityKey, settings.velocityWindowSeconds * 2);
  if (device) {
    multi
      .sadd(devicesKey, pseudonym(`device:${device.id}:${device.fingerprint}`))
      .expire(devicesKey, settings.deviceMemorySeconds);
  }
  const replies = await multi.exec();
  if (!replies) throw new Error("redis transaction aborted");
  for (const [error] of replies) if (error) throw error;

  const paymentsInWindow = Number(replies[0][1]);
  if (!device) return { paymentsInWindow, device: "absent" };
  return { paymentsInWindow, device: Number(replies[2][1]) === 1 ? "new" : "known" };
}
