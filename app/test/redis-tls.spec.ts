import assert from "node:assert/strict";
import { type CertificateAuthority, CertificateFactory } from "./support/certificates";
import { e2e, get, scoreAuthorization, startFraudService, type E2E } from "./support/e2e";
import { PrivateRedis } from "./support/private-servers";
import type { RunningService } from "./support/services";

const PASSWORD = "redis-auth-token-for-tests-0123456789";

/**
 * fraud-service to Redis over TLS with AUTH (ElastiCache in-transit encryption and an
 * AUTH token): a private redis-server serving TLS only, with requirepass.
 */
describe("TLS and AUTH to Redis", function () {
  this.timeout(90_000);
  let env: E2E;
  let redis: PrivateRedis;
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;

  before(async function () {
    env = await e2e();
    const certs = new CertificateFactory();
    ca = certs.ca("redis-ca");
    otherCa = certs.ca("other-redis-ca");
    const server = certs.server(ca, ["127.0.0.1"]);
    redis = await PrivateRedis.start({ tls: { ...server, caFile: ca.certFile }, password: PASSWORD });
  });

  after(async function () {
    await redis?.destroy();
  });

  const start = (overrides: Record<string, string>): Promise<RunningService> =>
    startFraudService(env, { REDIS_URL: redis.url, REDIS_TLS_CA_FILE: ca.certFile, REDIS_PASSWORD: PASSWORD, ...overrides });

  async function score(service: RunningService): Promise<{ degraded: boolean }> {
    const response = await fetch(`${service.url}/v1/score`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: await scoreAuthorization(env) },
      body: JSON.stringify({
        transaction_id: "00000000-0000-4000-8000-0000000007e5",
        sender_id: `tls_sender_${process.pid}`,
        receiver_id: "tls_receiver",
        amount: 100,
        currency: "USD",
        payment_method_type: "wallet",
      }),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as { degraded: boolean };
  }

  it("scores with the sender's history over rediss:// with the AUTH token, and is ready", async function () {
    assert.match(redis.url, /^rediss:\/\//);
    const service = await start({});
    try {
      let ready = 0;
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await get(service, "/readyz")).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(ready, 200, service.tail());
      assert.equal((await score(service)).degraded, false, "the history was read and written");
    } finally {
      await service.stop();
    }
  });

  const refusals: Array<[string, () => Record<string, string>, RegExp]> = [
    ["a server certificate from a CA it does not trust", () => ({ REDIS_TLS_CA_FILE: otherCa.certFile }), /self[- ]signed certificate in certificate chain|unable to (verify|get local issuer)/i],
    ["a wrong AUTH token", () => ({ REDIS_PASSWORD: "not-the-token-0123456789" }), /WRONGPASS|invalid (username-)?password/i],
    ["no AUTH token", () => ({ REDIS_PASSWORD: "" }), /NOAUTH|Authentication required/i],
  ];
  for (const [what, overrides, reason] of refusals) {
    it(`refuses ${what}: not ready, the reason logged, scores degraded`, async function () {
      const service = await start(overrides());
      try {
        const line = await service.waitForLog((l) => l.msg === "redis unavailable" || l.msg === "not ready", 15_000);
        assert.equal((await get(service, "/readyz")).status, 503);
        const logged = service.logs.filter((l) => l.msg === "redis unavailable" || l.msg === "not ready").map((l) => JSON.stringify(l.err));
        assert.ok(logged.some((e) => reason.test(e)), `${line.msg}: ${logged.join("\n")}`);
        assert.equal((await score(service)).degraded, true);
      } finally {
        await service.stop();
      }
    });
  }

  it("never falls back to a plain connection: redis:// to the TLS port does not connect", async function () {
    const service = await startFraudService(env, { REDIS_URL: redis.url.replace("rediss://", "redis://"), REDIS_PASSWORD: PASSWORD });
    try {
      assert.equal((await get(service, "/readyz")).status, 503);
      assert.equal((await score(service)).degraded, true);
    } finally {
      await service.stop();
    }
  });
});
