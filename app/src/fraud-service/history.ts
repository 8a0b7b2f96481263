/**
 * Sender history in Redis: a counter of completed payments per sender and fixed time
 * window, and the set of devices a sender has completed a payment from. Both expire.
 * Scoring reads it; only completed payments (the post-processing consumer) write it.
 *
 * dd-trace's ioredis spans record each command with its arguments (`redis.raw_command`)
 * and offer no way to hide them, so the arguments themselves carry no personal data:
 * keys and set members are truncated SHA-256 digests of the sender and device ids.
 */
import { createHash } from "node:crypto";
import Redis, { type Result } from "ioredis";
import type { DeviceHistory } from "./scoring";

export interface RedisSettings {
  readonly url: string;
  /** Prepended to every key (ioredis `keyPrefix`). */
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

/**
 * Scoring reads the history, it never writes it: a held or blocked attempt must not teach
 * the model (its device would pass as known on the next try). KEYS: velocity counter,
 * device set. ARGV: device member ('' when the request names no device). Returns
 * {completed payments in window, 1 known device | 0 new | -1 none}.
 */
const READ_HISTORY_LUA = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local known = -1
if ARGV[1] ~= '' then
  known = redis.call('SISMEMBER', KEYS[2], ARGV[1])
end
return {count, known}
`;

/**
 * The history learns from completed payments only (the post-processing consumer of
 * `payment.completed`), once per event: the marker key makes a redelivered or republished
 * event change nothing. KEYS: event marker, velocity counter, device set. ARGV: marker
 * TTL, counter TTL, device-set TTL, device member ('' for none). Returns 1 when applied,
 * 0 when the event had been applied before.
 */
const RECORD_PAYMENT_LUA = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return 1
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    readHistory(velocityKey: string, devicesKey: string, deviceMember: string): Result<[number, number], Context>;
    recordPayment(
      markerKey: string,
      velocityKey: string,
      devicesKey: string,
      markerTtlSeconds: number,
      velocityTtlSeconds: number,
      devicesTtlSeconds: number,
      deviceMember: string,
    ): Result<number, Context>;
  }
}

/**
 * `waitWhileDisconnected`: false for scoring (fail fast while disconnected instead of
 * queueing: scoring degrades, it does not wait); true for the history consumer, whose
 * commands may wait for a reconnection (their message waits in the queue meanwhile).
 */
export function createRedis(settings: RedisSettings, waitWhileDisconnected = false): Redis {
  const redis = new Redis(settings.url, {
    keyPrefix: settings.keyPrefix,
    commandTimeout: settings.commandTimeoutMs,
    enableOfflineQueue: waitWhileDisconnected,
    maxRetriesPerRequest: waitWhileDisconnected ? 3 : 0,
    // CLIENT SETINFO exists from Redis 7.2; older servers answer every connection with an
    // error, which the tracer records as error spans.
    disableClientInfo: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  // Sent as EVALSHA (EVAL once after a restart of Redis); the keys get `keyPrefix`.
  redis.defineCommand("readHistory", { numberOfKeys: 2, lua: READ_HISTORY_LUA });
  redis.defineCommand("recordPayment", { numberOfKeys: 3, lua: RECORD_PAYMENT_LUA });
  return redis;
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

const senderKeys = (settings: HistorySettings, senderId: string, at: number) => {
  const sender = pseudonym(`sender:${senderId}`);
  const window = Math.floor(at / 1000 / settings.velocityWindowSeconds);
  return { velocity: `velocity:${sender}:${window}`, devices: `devices:${sender}` };
};

const deviceMember = (device: { id: string; fingerprint: string } | undefined) =>
  device ? pseudonym(`device:${device.id}:${device.fingerprint}`) : "";

/**
 * The sender's history as scoring sees it: completed payments in the current window plus
 * this one, and whether this device paid before. One read-only script, one round trip and
 * one redis.command span.
 */
export async function readHistory(
  redis: Redis,
  settings: HistorySettings,
  senderId: string,
  device: { id: string; fingerprint: string } | undefined,
  now: number = Date.now(),
): Promise<SenderHistory> {
  const keys = senderKeys(settings, senderId, now);
  const [count, known] = await redis.readHistory(keys.velocity, keys.devices, deviceMember(device));
  const paymentsInWindow = Number(count) + 1;
  if (!device) return { paymentsInWindow, device: "absent" };
  return { paymentsInWindow, device: Number(known) === 1 ? "known" : "new" };
}

export interface CompletedPayment {
  /** The event id: the payment is counted once per id. */
  readonly eventId: string;
  readonly senderId: string;
  readonly device?: { id: string; fingerprint: string };
  /** When the payment committed, ms since the epoch: it counts in that velocity window. */
  readonly completedAt: number;
}

/**
 * Counts a completed payment in its sender's window and remembers its device, once per
 * event id (the marker outlives any redelivery: `eventMemorySeconds`). Resolves false
 * when the event had been applied before.
 */
export async function recordCompletedPayment(
  redis: Redis,
  settings: HistorySettings & { readonly eventMemorySeconds: number },
  payment: CompletedPayment,
): Promise<boolean> {
  const keys = senderKeys(settings, payment.senderId, payment.completedAt);
  const applied = await redis.recordPayment(
    `applied:${payment.eventId}`,
    keys.velocity,
    keys.devices,
    settings.eventMemorySeconds,
    settings.velocityWindowSeconds * 2,
    settings.deviceMemorySeconds,
    deviceMember(payment.device),
  );
  return Number(applied) === 1;
}
