/**
 * Sender history in Redis: a payment counter per sender and fixed time window, and the
 * set of devices a sender has paid from. Both expire.
 *
 * dd-trace's ioredis spans record each command with its arguments (`redis.raw_command`)
 * and offer no way to hide them, so the arguments themselves carry no personal data:
 * keys and set members are truncated HMAC-SHA256 digests of the sender and device ids,
 * keyed by a secret (REDIS_KEY_SECRET). A bare hash would let whoever reads Redis compute
 * a sender's keys, and reset their velocity count with one DEL.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import Redis, { type Result } from "ioredis";
import type { DeviceHistory } from "./scoring";

export interface RedisSettings {
  /** redis:// or rediss:// (TLS: the certificate must chain to `tlsCaFile` or a system CA and name the host; no fallback). */
  readonly url: string;
  readonly password?: string;
  readonly username?: string;
  /** PEM CA bundle for rediss://; default the system's CAs. */
  readonly tlsCaFile?: string;
  /** Prepended to every key (ioredis `keyPrefix`). */
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

/**
 * One atomic step per payment: count it in the sender's window, remember its device.
 * KEYS: velocity counter, device set. ARGV: counter TTL, device-set TTL, device member
 * ('' when the request names no device). Returns {payments in window, 1 new device | 0
 * known | -1 none}.
 */
const RECORD_HISTORY_LUA = `
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local added = -1
if ARGV[3] ~= '' then
  added = redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return {count, added}
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    recordHistory(
      velocityKey: string,
      devicesKey: string,
      velocityTtlSeconds: number,
      devicesTtlSeconds: number,
      deviceMember: string,
    ): Result<[number, number], Context>;
  }
}

/** ioredis' `tls` for the URL: none for redis://, verification against the CA bundle for rediss://. */
export function redisTlsOptions(settings: RedisSettings): { tls?: ConnectionOptions } {
  if (!settings.url.startsWith("rediss://")) return {};
  if (settings.tlsCaFile === undefined) return { tls: { rejectUnauthorized: true } };
  const bundle = readFileSync(settings.tlsCaFile, "utf8");
  if (!/-----BEGIN CERTIFICATE-----/.test(bundle)) throw new Error(`REDIS_TLS_CA_FILE ${settings.tlsCaFile} holds no PEM certificate`);
  return { tls: { ca: bundle, rejectUnauthorized: true } };
}

export function createRedis(settings: RedisSettings): Redis {
  const redis = new Redis(settings.url, {
    ...redisTlsOptions(settings),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
    ...(settings.username !== undefined ? { username: settings.username } : {}),
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
  // Sent as EVALSHA (EVAL once after a restart of Redis); the keys get `keyPrefix`.
  redis.defineCommand("recordHistory", { numberOfKeys: 2, lua: RECORD_HISTORY_LUA });
  return redis;
}

export interface SenderHistory {
  readonly paymentsInWindow: number;
  readonly device: DeviceHistory;
}

export interface HistorySettings {
  readonly velocityWindowSeconds: number;
  readonly deviceMemorySeconds: number;
  /** HMAC key of the key names and set members (REDIS_KEY_SECRET). */
  readonly keySecret: string;
}

/** The first 128 bits, hex, of HMAC-SHA256(`secret`, `value`). */
export function pseudonym(value: string, secret: string): string {
  return createHmac("sha256", secret).update(value).digest("hex").slice(0, 32);
}

/**
 * Counts this payment and remembers its device: one Lua script, one round trip and one
 * redis.command span (a MULTI/EXEC transaction took six commands and six spans).
 */
export async function recordAndReadHistory(
  redis: Redis,
  settings: HistorySettings,
  senderId: string,
  device: { id: string; fingerprint: string } | undefined,
  now: number = Date.now(),
): Promise<SenderHistory> {
  const sender = pseudonym(`sender:${senderId}`, settings.keySecret);
  const window = Math.floor(now / 1000 / settings.velocityWindowSeconds);
  const [count, added] = await redis.recordHistory(
    `velocity:${sender}:${window}`,
    `devices:${sender}`,
    settings.velocityWindowSeconds * 2,
    settings.deviceMemorySeconds,
    device ? pseudonym(`device:${device.id}:${device.fingerprint}`, settings.keySecret) : "",
  );
  const paymentsInWindow = Number(count);
  if (!device) return { paymentsInWindow, device: "absent" };
  return { paymentsInWindow, device: Number(added) === 1 ? "new" : "known" };
}
