/**
 * The env that tells the services whose tokens to accept (components/auth.ts): pure
 * functions, each value written out as the service reads it.
 */
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { paymentPolicyEnv, serviceAccountSubject, serviceAuthEnv, userAuthEnv } from "../components/auth";

/** The plain value of an Input (an Output built from known values resolves without an engine). */
const valueOf = <T>(input: pulumi.Input<T>): Promise<T> => new Promise((resolve) => void pulumi.output(input).apply((v) => resolve(v as T)));

describe("authentication env (components/auth.ts)", () => {
  it("gives payment-service its users' identity provider: issuer, audience, key set and clock tolerance", () => {
    const env = userAuthEnv({
      issuer: "https://login.example.test/",
      audience: "https://api.example.test",
      jwksUrl: "https://login.example.test/keys.json",
      clockToleranceSeconds: 45,
    });
    assert.deepEqual(env, {
      AUTH_ISSUER: "https://login.example.test/",
      AUTH_AUDIENCE: "https://api.example.test",
      AUTH_JWKS_URL: "https://login.example.test/keys.json",
      AUTH_CLOCK_TOLERANCE_SECONDS: "45",
    });
  });

  it("names a ServiceAccount's tokens system:serviceaccount:<namespace>:<name>", () => {
    assert.equal(serviceAccountSubject("payments", "payment-service"), "system:serviceaccount:payments:payment-service");
  });

  it("has a service trust the cluster issuer's keys at <issuer>/keys, tokens for itself, from each allowed caller's ServiceAccount", async () => {
    const env = serviceAuthEnv({
      issuer: pulumi.output("https://oidc.eks.example.test/id/ABC"),
      audience: "fraud-service",
      namespace: "payments",
      callers: ["payment-service", "outbox-relay"],
    });
    assert.deepEqual(Object.keys(env).sort(), ["SERVICE_AUTH_AUDIENCE", "SERVICE_AUTH_ISSUER", "SERVICE_AUTH_JWKS_URL", "SERVICE_AUTH_SUBJECTS"]);
    assert.equal(await valueOf(env.SERVICE_AUTH_ISSUER), "https://oidc.eks.example.test/id/ABC");
    assert.equal(await valueOf(env.SERVICE_AUTH_JWKS_URL), "https://oidc.eks.example.test/id/ABC/keys");
    assert.equal(env.SERVICE_AUTH_AUDIENCE, "fraud-service");
    assert.equal(env.SERVICE_AUTH_SUBJECTS, "system:serviceaccount:payments:payment-service,system:serviceaccount:payments:outbox-relay");
  });

  it("gives payment-service its idempotency window in seconds and its per-user rate limit", () => {
    const env = paymentPolicyEnv({ idempotencyWindowHours: 2, rateLimit: { perUserPerMinute: 120, burst: 15 } } as Parameters<typeof paymentPolicyEnv>[0]);
    assert.deepEqual(env, { IDEMPOTENCY_WINDOW_SECONDS: "7200", RATE_LIMIT_PER_MINUTE: "120", RATE_LIMIT_BURST: "15" });
  });
});
