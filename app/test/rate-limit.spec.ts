import assert from "node:assert/strict";
import { PerUserRateLimiter } from "../src/payment-service/rate-limit";
import { balanceOf, createWallet, transactionsOf } from "./support/database";
import { e2e, paymentWithFraudStandIn, postPayment, startPaymentService, type E2E } from "./support/e2e";
import { identity } from "./support/identity";
import type { RunningService } from "./support/services";
import { SERVICES } from "../src/tracing/conventions";

describe("per-user rate limiter (token bucket)", function () {
  it("lets a burst through, then one payment per 1/rate, and says how long to wait", function () {
    let now = 0;
    const limiter = new PerUserRateLimiter({ perMinute: 60, burst: 3 }, () => now);
    assert.deepEqual([1, 2, 3].map(() => limiter.take("alice")), [0, 0, 0]);
    assert.equal(limiter.take("alice"), 1, "one token a second: retry in 1 s");
    assert.equal(limiter.take("bob"), 0, "users do not share a bucket");
    now += 1_000;
    assert.equal(limiter.take("alice"), 0);
    assert.equal(limiter.take("alice"), 1);
    now += 60_000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take("alice")), [0, 0, 0, 1], "refills up to the burst, not beyond");
  });

  it("rounds Retry-After up to whole seconds at slow rates", function () {
    const limiter = new PerUserRateLimiter({ perMinute: 2, burst: 1 }, () => 0);
    assert.equal(limiter.take("carol"), 0);
    assert.equal(limiter.take("carol"), 30);
  });

  it("keeps at most maxUsers buckets, dropping idle ones first", function () {
    let now = 0;
    const limiter = new PerUserRateLimiter({ perMinute: 60, burst: 1, maxUsers: 10 }, () => now);
    for (let i = 0; i < 10; i++) limiter.take(`user${i}`);
    now += 5_000;
    limiter.take("busy");
    assert.ok(limiter.users <= 10, `${limiter.users} buckets`);
    assert.equal(limiter.take("busy"), 1, "the new user's bucket was kept");
  });
});

describe("per-user rate limit on POST /v1/payments (rendered prod limits)", function () {
  let env: E2E;
  let service: RunningService;

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
    const { standIn } = await paymentWithFraudStandIn();
    // The rendered values, not the specs' generous default.
    const rendered = env.rendered[SERVICES.payment];
    service = await startPaymentService(env, {
      FRAUD_SERVICE_URL: standIn.url,
      RATE_LIMIT_PER_MINUTE: rendered.RATE_LIMIT_PER_MINUTE,
      RATE_LIMIT_BURST: rendered.RATE_LIMIT_BURST,
    });
  });

  after(async function () {
    await service.stop();
  });

  it("answers 429 with Retry-After past the burst, before any ledger or fraud work, per user", async function () {
    const burst = Number(env.rendered[SERVICES.payment].RATE_LIMIT_BURST);
    assert.ok(burst >= 1 && burst < 100, `burst ${burst}`);
    const { standIn } = await paymentWithFraudStandIn();
    const sender = await createWallet(env.db.pool, "limited", { balance: 1_000_000 });
    const other = await createWallet(env.db.pool, "not_limited", { balance: 1_000_000 });
    const receiver = await createWallet(env.db.pool, "limited_to", { balance: 0 });
    const pay = (from: string) =>
      postPayment(service, { sender_id: from, receiver_id: receiver, amount: 100, currency: "USD", payment_method_type: "wallet" });

    const answers = [];
    for (let i = 0; i < burst + 5; i++) answers.push(await pay(sender));
    const created = answers.filter((a) => a.status === 201).length;
    const limited = answers.filter((a) => a.status === 429);
    // A token may come back while the burst is sent (one per second at 60/min).
    assert.ok(created >= burst && created <= burst + 2, `${created} created`);
    assert.ok(limited.length >= 3, `${limited.length} limited`);
    for (const a of limited) assert.equal(a.body.error, "rate_limited");

    const fraudCalls = standIn.requests.length;
    const response = await fetch(`${service.url}/v1/payments`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "idempotency-key": `limited-${process.pid}-${Date.now()}`,
        authorization: await (await identity()).bearer(sender),
      },
      body: JSON.stringify({ sender_id: sender, receiver_id: receiver, amount: 100, currency: "USD", payment_method_type: "wallet" }),
    });
    assert.equal(response.status, 429);
    const retryAfter = Number(response.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(standIn.requests.length, fraudCalls, "a limited request calls nothing downstream");
    assert.equal((await transactionsOf(env.db.pool, sender)).length, created, "limited requests wrote no row");
    assert.equal(await balanceOf(env.db.pool, sender), 1_000_000n - BigInt(created * 100));

    // Another user is not affected.
    assert.equal((await pay(other)).status, 201);
  });
});
