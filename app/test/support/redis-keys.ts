/** The shared Redis on 127.0.0.1 and its key clean-up, for the tests and the demo (no test hooks here). */
import Redis from "ioredis";

export const REDIS_URL = "redis://127.0.0.1:6379";

/** Deletes every key of the shared Redis that starts with `prefix`. */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, disableClientInfo: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
