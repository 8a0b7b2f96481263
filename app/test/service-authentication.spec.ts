/**
 * fraud-service trusts only payment-service: a projected ServiceAccount token from the
 * cluster's issuer (support/identity.ts's stand-in, keys generated here), for its audience,
 * of the payment-service account. Anything else is 401 and leaves Redis as it was.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { AUTH_TAGS, HTTP_SERVER_SPAN, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { balanceOf, createWallet } from "./support/database";
import { e2e, postPayment, REDIS_URL, startPaymentService, type E2E } from "./support/e2e";
import { clusterIssuer, TokenFile, type IdentityProvider } from "./support/identity";
import type { RunningService } from "./support/services";

const CHALLENGE_INVALID = `Bearer realm="${SERVICES.fraud}", error="invalid_token"`;

let scoreCount = 0;

async function redisKeys(prefix: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, disableClientInfo: true });
  await redis.connect();
  try {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== "0");
    return keys.sort();
  } finally {
    redis.disconnect();
  }
}

describe("service authentication of POST /v1/score", function () {
  let env: E2E;
  let cluster: IdentityProvider;
  let subject: string;
  let audience: string;

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
    cluster = await clusterIssuer();
    subject = env.rendered[SERVICES.fraud].SERVICE_AUTH_SUBJECTS;
    audience = env.rendered[SERVICES.fraud].SERVICE_AUTH_AUDIENCE;
    assert.equal(subject, "system:serviceaccount:payments:payment-service");
    assert.equal(audience, SERVICES.fraud);
  });

  /** A score request with `authorization`, its answer, and its trace in fraud-service. */
  async function score(authorization: string | undefined) {
    const userAgent = `service-auth-${process.pid}-${(scoreCount += 1)}`;
    const response = await fetch(`${env.fraud.url}/v1/score`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": userAgent, ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({
        transaction_id: randomUUID(),
        sender_id: `svc_sender_${process.pid}_${scoreCount}`,
        receiver_id: `svc_receiver_${process.pid}`,
        amount: 100,
        currency: "USD",
        payment_method_type: "wallet",
        device: { id: `svc-device-${scoreCount}`, fingerprint: "fp" },
      }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    const trace = await env.intake.waitForTrace((t) =>
      t.some((s) => s.name === HTTP_SERVER_SPAN && s.service === SERVICES.fraud && s.meta["http.useragent"] === userAgent),
    );
    return { status: response.status, body, challenge: response.headers.get("www-authenticate"), trace };
  }

  const refusals: Array<{ name: string; authorization: () => Promise<string | undefined>; reason: string; challenge?: string }> = [
    { name: "an unsigned call (no token)", authorization: async () => undefined, reason: "missing_token", challenge: `Bearer realm="${SERVICES.fraud}"` },
    { name: "a token for another audience", authorization: async () => `Bearer ${await cluster.serviceAccountToken(subject, { audience: "reporting-service" })}`, reason: "wrong_audience" },
    { name: "another service account's token", authorization: async () => `Bearer ${await cluster.serviceAccountToken("system:serviceaccount:payments:fraud-service", { audience })}`, reason: "subject_not_allowed" },
    { name: "a payment-service token from another namespace", authorization: async () => `Bearer ${await cluster.serviceAccountToken("system:serviceaccount:default:payment-service", { audience })}`, reason: "subject_not_allowed" },
    { name: "a token from another issuer", authorization: async () => `Bearer ${await cluster.serviceAccountToken(subject, { audience, issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER" })}`, reason: "wrong_issuer" },
    { name: "an expired token", authorization: async () => `Bearer ${await cluster.serviceAccountToken(subject, { audience, issuedAgo: 7200, expiresIn: 3600 })}`, reason: "expired" },
    { name: "a token issued more than an hour ago", authorization: async () => `Bearer ${await cluster.serviceAccountToken(subject, { audience, issuedAgo: 4000, expiresIn: 86_400 })}`, reason: "expired" },
    { name: "a user's access token", authorization: async () => `Bearer ${await cluster.token("payment-service", { audience })}`, reason: "subject_not_allowed" },
  ];

  for (const c of refusals) {
    it(`refuses ${c.name} with 401, records nothing in Redis, span says ${c.reason}`, async function () {
      const keysBefore = await redisKeys(env.redisPrefix);
      const answer = await score(await c.authorization());
      assert.equal(answer.status, 401, JSON.stringify(answer.body));
      assert.equal(answer.body.error, c.challenge ? "authentication_required" : "invalid_token");
      assert.equal(answer.challenge, c.challenge ?? CHALLENGE_INVALID);
      assert.deepEqual(await redisKeys(env.redisPrefix), keysBefore, "no Redis key written");
      const auth = answer.trace.filter((s) => s.name === SPANS.serviceAuthentication);
      assert.equal(auth.length, 1);
      assert.equal(auth[0].meta[AUTH_TAGS.result], "failure");
      assert.equal(auth[0].meta[AUTH_TAGS.failureReason], c.reason);
      assert.equal(auth[0].metrics["_dd.measured"], 1);
      assert.ok(!answer.trace.some((s) => s.name === "redis.command" || s.name === SPANS.fraudDetection), "no scoring");
      const root = answer.trace.find((s) => s.name === HTTP_SERVER_SPAN)!;
      assert.equal(root.meta[TAGS.rootAuth], "failed");
      assert.equal(root.metrics._sampling_priority_v1, 2, "kept under the prod env");
    });
  }

  it("accepts payment-service's token and scores", async function () {
    const answer = await score(`Bearer ${await cluster.serviceAccountToken(subject, { audience })}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.decision, "allow");
    const auth = answer.trace.find((s) => s.name === SPANS.serviceAuthentication)!;
    assert.equal(auth.meta[AUTH_TAGS.result], "success");
    assert.equal(auth.meta[AUTH_TAGS.serviceAccount], subject);
  });

  it("is called by payment-service with its token, and follows the token file as the kubelet rotates it", async function () {
    this.timeout(60_000);
    const file = new TokenFile("rotating-service-token");
    // A token of the wrong account first: fraud-service refuses it, the payment fails closed.
    file.write(await cluster.serviceAccountToken("system:serviceaccount:payments:intruder", { audience }));
    const payment: RunningService = await startPaymentService(env, {
      FRAUD_SERVICE_URL: env.fraud.url,
      SERVICE_TOKEN_FILE: file.path,
      SERVICE_TOKEN_REREAD_MS: "0",
    });
    try {
      const sender = await createWallet(env.db.pool, "svc_rotation", { balance: 10_000 });
      const receiver = await createWallet(env.db.pool, "svc_rotation_to", { balance: 0 });
      const body = { sender_id: sender, receiver_id: receiver, amount: 100, currency: "USD", payment_method_type: "wallet" };
      const refused = await postPayment(payment, body);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error, "fraud_unavailable");
      assert.equal(await balanceOf(env.db.pool, sender), 10_000n);

      // The kubelet swaps in a fresh token of the right account: no restart needed.
      file.write(await cluster.serviceAccountToken(subject, { audience }));
      const paid = await postPayment(payment, body);
      assert.equal(paid.status, 201, JSON.stringify(paid.body));
      assert.equal(await balanceOf(env.db.pool, sender), 9_900n);
    } finally {
      await payment.stop();
    }
  });
});
