/**
 * Who may call POST /v1/payments: bearer access tokens signed by keys the test generates,
 * published by a JWKS server on 127.0.0.1 (support/identity.ts). Every refusal is one row of
 * a table, checked for its status, error code and challenge, for nothing written (SQL), for
 * no call to fraud-service (the stand-in), and for its `user.authentication` span.
 */
import assert from "node:assert/strict";
import { AUTH_TAGS, HTTP_SERVER_SPAN, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { balanceOf, createWallet, transactionsOf } from "./support/database";
import { e2e, paymentWithFraudStandIn, postPayment, startPaymentService, type ApiResponse, type E2E } from "./support/e2e";
import type { FraudStandIn } from "./support/fraud-stand-in";
import { identity, IdentityProvider } from "./support/identity";
import type { RunningService } from "./support/services";
import type { CapturedSpan } from "./support/trace-intake";
import { isRoot } from "./support/traces";

const CHALLENGE_MISSING = `Bearer realm="${SERVICES.payment}"`;
const CHALLENGE_INVALID = `Bearer realm="${SERVICES.payment}", error="invalid_token"`;
const CHALLENGE_SCOPE = `Bearer realm="${SERVICES.payment}", error="insufficient_scope", scope="payments:write"`;

interface RefusalCase {
  readonly name: string;
  /** The Authorization header for a request from `sender` (undefined: none). */
  readonly authorization: (users: IdentityProvider, sender: string) => Promise<string | undefined>;
  /** Send as another user's payment (sender_id is someone else's wallet). */
  readonly otherSender?: boolean;
  readonly status: number;
  readonly error: string;
  readonly challenge: string | undefined;
  /** `auth.failure_reason` on the span. */
  readonly reason: string;
  /** The user.authentication span succeeded (the refusal came after it). */
  readonly authenticated?: boolean;
}

const bearer = (token: string) => `Bearer ${token}`;

const REFUSALS: RefusalCase[] = [
  { name: "no token", authorization: async () => undefined, status: 401, error: "authentication_required", challenge: CHALLENGE_MISSING, reason: "missing_token" },
  { name: "another scheme (Basic)", authorization: async () => "Basic cGF5bWVudHM6cGF5bWVudHM=", status: 401, error: "authentication_required", challenge: CHALLENGE_MISSING, reason: "missing_token" },
  { name: "a token that is not a JWT", authorization: async () => "Bearer nonsense", status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "malformed_token" },
  { name: "an empty bearer token", authorization: async () => "Bearer ", status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "malformed_token" },
  { name: "expired beyond the clock tolerance", authorization: async (u, s) => bearer(await u.token(s, { expiresIn: -120 })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "expired" },
  { name: "not yet valid (nbf in 5 min)", authorization: async (u, s) => bearer(await u.token(s, { notBefore: 300 })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "not_yet_valid" },
  { name: "another issuer", authorization: async (u, s) => bearer(await u.token(s, { issuer: "https://evil.example.com/" })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "wrong_issuer" },
  { name: "another audience", authorization: async (u, s) => bearer(await u.token(s, { audience: "reporting-api" })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "wrong_audience" },
  { name: "alg: none", authorization: async (u, s) => bearer(u.unsignedToken(s)), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "algorithm_not_allowed" },
  { name: "HS256 signed with the RSA public key", authorization: async (u, s) => bearer(await u.hmacWithPublicKey(s)), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "algorithm_not_allowed" },
  { name: "an unknown kid", authorization: async (u, s) => bearer(await u.token(s, { unpublishedKey: true })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "unknown_key" },
  {
    name: "a valid token with its claims changed (signature no longer matches)",
    authorization: async (u, s) => {
      const [header, payload, signature] = (await u.token(`${s}_x`)).split(".");
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      return bearer([header, Buffer.from(JSON.stringify({ ...claims, sub: s })).toString("base64url"), signature].join("."));
    },
    status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "bad_signature",
  },
  { name: "not an access token (typ JWT, e.g. an ID token)", authorization: async (u, s) => bearer(await u.token(s, { typ: "JWT" })), status: 401, error: "invalid_token", challenge: CHALLENGE_INVALID, reason: "wrong_type" },
  { name: "without the payments:write scope", authorization: async (u, s) => bearer(await u.token(s, { scope: "payments:read profile" })), status: 403, error: "insufficient_scope", challenge: CHALLENGE_SCOPE, reason: "insufficient_scope" },
  { name: "a sender that is not the token's sub", authorization: async (u) => bearer(await u.tokenFor(`mallory_${process.pid}`)), otherSender: true, status: 403, error: "sender_mismatch", challenge: undefined, reason: "sender_mismatch", authenticated: true },
];

let caseCount = 0;

/** A payment from `sender` whose root span can be found by its user agent. */
async function attempt(service: RunningService, sender: string, receiver: string, authorization: string | undefined) {
  const userAgent = `auth-spec-${process.pid}-${(caseCount += 1)}`;
  const response = await fetch(`${service.url}/v1/payments`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "idempotency-key": `auth-${userAgent}`,
      "user-agent": userAgent,
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({ sender_id: sender, receiver_id: receiver, amount: 700, currency: "USD", payment_method_type: "wallet" }),
  });
  const answer: ApiResponse & { challenge: string | null } = {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    challenge: response.headers.get("www-authenticate"),
  };
  return { answer, userAgent };
}

async function traceOf(env: E2E, userAgent: string): Promise<CapturedSpan[]> {
  return env.intake.waitForTrace((trace) =>
    trace.some((s) => s.name === HTTP_SERVER_SPAN && s.service === SERVICES.payment && s.meta["http.useragent"] === userAgent),
  );
}

describe("authentication of POST /v1/payments", function () {
  let env: E2E;
  let users: IdentityProvider;
  let standIn: FraudStandIn;
  let payment: RunningService;
  let receiver: string;
  const tokensSeen: string[] = [];

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
    users = await identity();
    ({ standIn, payment } = await paymentWithFraudStandIn());
    standIn.behaviour = "allow";
    receiver = await createWallet(env.db.pool, "auth_receiver", { balance: 0 });
  });

  for (const c of REFUSALS) {
    it(`refuses ${c.name}: ${c.status} ${c.error}, nothing written, fraud-service not called, span says ${c.reason}`, async function () {
      const sender = await createWallet(env.db.pool, "auth_sender", { balance: 10_000 });
      const victimReceiverBefore = await balanceOf(env.db.pool, receiver);
      const fraudCalls = standIn.requests.length;
      const authorization = await c.authorization(users, sender);
      if (authorization) tokensSeen.push(authorization.slice("Bearer ".length));

      const { answer, userAgent } = await attempt(payment, sender, receiver, authorization);

      assert.equal(answer.status, c.status, JSON.stringify(answer.body));
      assert.equal(answer.body.error, c.error);
      assert.equal(answer.challenge, c.challenge ?? null);
      assert.deepEqual(await transactionsOf(env.db.pool, sender), [], "no transaction row");
      assert.equal(await balanceOf(env.db.pool, sender), 10_000n);
      assert.equal(await balanceOf(env.db.pool, receiver), victimReceiverBefore);
      assert.equal(standIn.requests.length, fraudCalls, "fraud-service was not called");

      const trace = await traceOf(env, userAgent);
      const root = trace.find((s) => isRoot(s) && s.service === SERVICES.payment)!;
      const auth = trace.filter((s) => s.name === SPANS.userAuthentication);
      assert.equal(auth.length, 1, "one user.authentication span");
      assert.equal(auth[0].metrics["_dd.measured"], 1, "measured");
      assert.equal(auth[0].parentId, root.spanId);
      assert.equal(auth[0].meta[AUTH_TAGS.result], c.authenticated ? "success" : "failure");
      if (!c.authenticated) {
        assert.equal(auth[0].meta[AUTH_TAGS.failureReason], c.reason);
        assert.equal(auth[0].meta[AUTH_TAGS.userId], undefined, "no user id for a token that did not verify");
      }
      assert.equal(auth[0].error, 0, "a refused caller is not a server error");
      assert.equal(root.meta[TAGS.rootAuth], "failed");
      assert.equal(root.meta[AUTH_TAGS.failureReason], c.reason);
      assert.equal(root.metrics._sampling_priority_v1, 2, "kept by a sampling rule under the prod env");
      assert.ok(!trace.some((s) => s.name === SPANS.processPayment || s.name === SPANS.databaseQuery), "no payment work");
    });
  }

  it("accepts ES256 and RS256 tokens, tolerates 10 s of clock skew, and tags the user on the span", async function () {
    const tokens = {
      ES256: async (s: string) => users.token(s),
      RS256: async (s: string) => users.token(s, { alg: "RS256" }),
      "expired 10 s ago": async (s: string) => users.token(s, { expiresIn: -10 }),
      "valid in 10 s": async (s: string) => users.token(s, { notBefore: 10 }),
    };
    for (const [what, mint] of Object.entries(tokens)) {
      const sender = await createWallet(env.db.pool, "auth_ok", { balance: 10_000 });
      const token = await mint(sender);
      tokensSeen.push(token);
      const { answer, userAgent } = await attempt(payment, sender, receiver, bearer(token));
      assert.equal(answer.status, 201, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(await balanceOf(env.db.pool, sender), 9_300n, what);
      const trace = await traceOf(env, userAgent);
      const auth = trace.find((s) => s.name === SPANS.userAuthentication)!;
      assert.equal(auth.meta[AUTH_TAGS.result], "success", what);
      assert.equal(auth.meta[AUTH_TAGS.userId], sender, what);
      assert.equal(trace.find((s) => isRoot(s) && s.service === SERVICES.payment)!.meta[TAGS.rootAuth], "ok");
      assert.deepEqual(
        Object.keys(auth.meta).filter((k) => /^(auth|usr)\./.test(k)).sort(),
        [AUTH_TAGS.result, AUTH_TAGS.userId].sort(),
      );
      const claimValues = ["payments-web", "payments:write", users.issuer, users.audience, `jti-${process.pid}`];
      for (const span of trace) {
        for (const value of Object.values(span.meta)) {
          assert.ok(!claimValues.some((c) => value.includes(c)), `a claim on ${span.name}: ${value}`);
        }
      }
    }
  });

  it("accepts a new key (kid) the provider starts signing with, without a restart", async function () {
    const sender = await createWallet(env.db.pool, "auth_rotated", { balance: 10_000 });
    const before = users.jwksRequests;
    const oldToken = await users.token(sender);
    const kid = await users.rotate();
    const newToken = await users.token(sender);
    assert.equal(JSON.parse(Buffer.from(newToken.split(".")[0], "base64url").toString()).kid, kid);
    // The cooldown of the key set refetch (200 ms in the tests' env) must have passed.
    await new Promise((resolve) => setTimeout(resolve, 250));
    tokensSeen.push(oldToken, newToken);
    for (const token of [newToken, oldToken]) {
      const { answer } = await attempt(payment, sender, receiver, bearer(token));
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
    }
    assert.ok(users.jwksRequests > before, "the unknown kid made it fetch the key set again");
  });

  it("never sends a token's bytes to the trace intake or a log line", function () {
    assert.ok(tokensSeen.length > 10);
    // The signature part is unique to each token (header and claims may repeat).
    const signatures = tokensSeen.map((t) => t.split(".")[2]).filter((s) => s && s.length > 20);
    const spans = JSON.stringify(env.intake.spans(), (_k, v) => (typeof v === "bigint" ? String(v) : v));
    const logs = payment.output.join("\n");
    for (const signature of signatures) {
      assert.ok(!spans.includes(signature), "token in a span");
      assert.ok(!logs.includes(signature), "token in a log line");
    }
  });
});

describe("authentication when the identity provider's keys cannot be had", function () {
  let env: E2E;
  let users: IdentityProvider;
  const stopped: RunningService[] = [];

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
    users = await IdentityProvider.start();
  });

  after(async function () {
    for (const service of stopped) await service.stop();
    await users.close();
  });

  it("answers 503 authentication_unavailable, never a pass, and writes nothing", async function () {
    this.timeout(60_000);
    const { standIn } = await paymentWithFraudStandIn();
    users.serving = false;
    const service = await startPaymentService(env, { ...users.userAuthEnv(), FRAUD_SERVICE_URL: standIn.url });
    stopped.push(service);
    const sender = await createWallet(env.db.pool, "auth_jwks_down", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "auth_jwks_down_to", { balance: 0 });
    const fraudCalls = standIn.requests.length;
    const { answer, userAgent } = await attempt(service, sender, receiver, bearer(await users.token(sender)));
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.error, "authentication_unavailable");
    assert.equal(answer.challenge, null);
    assert.deepEqual(await transactionsOf(env.db.pool, sender), []);
    assert.equal(standIn.requests.length, fraudCalls);
    const trace = await traceOf(env, userAgent);
    const auth = trace.find((s) => s.name === SPANS.userAuthentication)!;
    assert.equal(auth.meta[AUTH_TAGS.failureReason], "keys_unavailable");
    assert.equal(auth.error, 1, "the provider being unreachable is an error");

    // Once the keys are served again, the same token passes.
    users.serving = true;
    const again = await attempt(service, sender, receiver, bearer(await users.token(sender)));
    assert.equal(again.answer.status, 201, JSON.stringify(again.answer.body));
  });

  it("fetches the key set at most once per cooldown, however many unknown kids arrive", async function () {
    this.timeout(60_000);
    const { standIn } = await paymentWithFraudStandIn();
    const service = await startPaymentService(env, { ...users.userAuthEnv(), AUTH_JWKS_COOLDOWN_MS: "60000", FRAUD_SERVICE_URL: standIn.url });
    stopped.push(service);
    const sender = await createWallet(env.db.pool, "auth_kid_flood", { balance: 10_000 });
    const before = users.jwksRequests;
    for (let i = 0; i < 10; i++) {
      const { answer } = await attempt(service, sender, sender, bearer(await users.token(sender, { unpublishedKey: true })));
      assert.equal(answer.status, 401);
    }
    assert.equal(users.jwksRequests - before, 1, "one fetch for ten unknown kids");
  });
});
