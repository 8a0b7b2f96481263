import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import Redis from "ioredis";
import { createRedis, recordCompletedPayment } from "../src/fraud-service/history";
import { SERVICES } from "../src/tracing/conventions";
import { e2e, REDIS_URL, scoreAuthorization, TEST_REDIS_KEY_SECRET, type E2E } from "./support/e2e";
import { renderedEnv, runToExit, testEnv } from "./support/services";

/** Computed here with node:crypto directly, so the service's own helper is not its own oracle. */
const keyed = (value: string) => createHmac("sha256", TEST_REDIS_KEY_SECRET).update(value).digest("hex").slice(0, 32);
const bare = (value: string) => createHash("sha256").update(value).digest("hex").slice(0, 32);

describe("fraud-service's Redis key names", function () {
  let env: E2E;
  let redis: Redis;
  const sender = `keys_sender_${process.pid}`;

  before(async function () {
    env = await e2e();
    redis = new Redis(REDIS_URL, { disableClientInfo: true });
    const response = await fetch(`${env.fraud.url}/v1/score`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: await scoreAuthorization(env) },
      body: JSON.stringify({
        transaction_id: "00000000-0000-4000-8000-00000000beef",
        sender_id: sender,
        receiver_id: "keys_receiver",
        amount: 100,
        currency: "USD",
        payment_method_type: "wallet",
        device: { id: "keys-device", fingerprint: "keys-fingerprint" },
      }),
    });
    assert.equal(response.status, 200);
    // Scoring only reads the history; the consumers write it when a payment completes, with
    // the code and the key they run (REDIS_KEY_SECRET, the same Secret value as fraud-service's).
    const writer = createRedis({ url: REDIS_URL, keyPrefix: env.redisPrefix, commandTimeoutMs: 2_000 }, true);
    try {
      const applied = await recordCompletedPayment(
        writer,
        { velocityWindowSeconds: 3_600, deviceMemorySeconds: 86_400, eventMemorySeconds: 86_400, keySecret: TEST_REDIS_KEY_SECRET },
        { eventId: `keys-event-${process.pid}`, senderId: sender, device: { id: "keys-device", fingerprint: "keys-fingerprint" }, completedAt: Date.now() },
      );
      assert.equal(applied, true);
    } finally {
      writer.disconnect();
    }
  });

  after(() => redis.disconnect());

  it("are an HMAC of the sender and device under the secret key: neither readable nor computable without it", async function () {
    const keys = await redis.keys(`${env.redisPrefix}*`);
    const velocity = keys.filter((k) => k.startsWith(`${env.redisPrefix}velocity:${keyed(`sender:${sender}`)}:`));
    assert.equal(velocity.length, 1, keys.join("\n"));
    assert.ok(keys.includes(`${env.redisPrefix}devices:${keyed(`sender:${sender}`)}`), keys.join("\n"));
    assert.deepEqual(await redis.smembers(`${env.redisPrefix}devices:${keyed(`sender:${sender}`)}`), [keyed("device:keys-device:keys-fingerprint")]);
    // The former names, a bare SHA-256 anyone could compute (and DEL to reset a sender's count), are not used.
    assert.ok(!keys.some((k) => k.includes(bare(`sender:${sender}`))), "no key computable from the sender id alone");
    assert.ok(!keys.some((k) => k.includes(sender) || k.includes("keys-device")), "no identifier in clear");
  });

  it("refuses to start without a key of at least 32 characters, naming the variable", async function () {
    const base = testEnv(await renderedEnv(SERVICES.fraud), env.intake.url, { REDIS_URL, REDIS_KEY_PREFIX: env.redisPrefix });
    for (const value of [undefined, "short-key"]) {
      const result = await runToExit(SERVICES.fraud, { ...base, ...(value === undefined ? {} : { REDIS_KEY_SECRET: value }) });
      assert.equal(result.code, 1);
      assert.match(result.output, /invalid environment: REDIS_KEY_SECRET/);
    }
  });
});
