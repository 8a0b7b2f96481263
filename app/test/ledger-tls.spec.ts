import assert from "node:assert/strict";
import { type CertificateAuthority, CertificateFactory } from "./support/certificates";
import type { Pool } from "pg";
import { createTestDatabase, transactionsOf, type TestDatabase } from "./support/database";
import { e2e, get, postPayment, startPaymentService, type E2E } from "./support/e2e";
import { PrivatePostgres, serverOwner } from "./support/private-servers";
import type { LogLine, RunningService } from "./support/services";

let wallets = 0;
/**
 * A wallet in the private database. Not `createWallet`: that one adds to the opening
 * totals the money-invariant specs check on the shared database.
 */
async function wallet(pool: Pool, label: string, balance: number): Promise<string> {
  const userId = `${label}_${process.pid}_${++wallets}`;
  await pool.query(`INSERT INTO wallets (user_id, currency, balance, customer_tier, country) VALUES ($1, 'USD', $2, 'standard', 'US')`, [userId, balance]);
  return userId;
}

/**
 * payment-service to PostgreSQL over TLS, verify-full: a private server with ssl=on and
 * certificates made here; the service started with the env the program renders, the CA
 * bundle pointed at the test CA.
 */
describe("TLS to PostgreSQL (verify-full)", function () {
  this.timeout(120_000);
  let env: E2E;
  let pg: PrivatePostgres;
  let db: TestDatabase;
  let certs: CertificateFactory;
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;

  before(async function () {
    env = await e2e();
    certs = new CertificateFactory();
    ca = certs.ca("ledger-ca");
    otherCa = certs.ca("other-ca");
    pg = await PrivatePostgres.start();
    await pg.useTls(certs.server(ca, ["127.0.0.1"], serverOwner()));
    db = await createTestDatabase(`payments_tls_${process.pid}`, pg.server);
  });

  after(async function () {
    await db?.drop().catch(() => undefined);
    await pg?.destroy();
  });

  const start = (): Promise<RunningService> =>
    startPaymentService(env, { ...db.env, PGSSLMODE: "verify-full", PGSSLROOTCERT: ca.certFile, FRAUD_SERVICE_URL: env.fraud.url });
  const startupLine = (service: RunningService): Promise<LogLine> =>
    service.waitForLog((l) => l.msg === "database reachable" || l.msg === "database unreachable at start-up");

  it("connects, pays and reports ready over TLS, every connection of the service encrypted", async function () {
    const service = await start();
    try {
      assert.equal((await startupLine(service)).msg, "database reachable", service.tail());
      assert.equal((await get(service, "/readyz")).status, 200);
      const sender = await wallet(db.pool, "tls_sender", 5_000);
      const receiver = await wallet(db.pool, "tls_receiver", 0);
      const paid = await postPayment(service, { sender_id: sender, receiver_id: receiver, amount: 1_200, currency: "USD", payment_method_type: "wallet" });
      assert.equal(paid.status, 201, JSON.stringify(paid.body));
      const { rows } = await db.pool.query<{ ssl: boolean; n: number }>(
        `SELECT s.ssl, count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.application_name = 'payment-service' AND a.datname = $1 GROUP BY s.ssl`,
        [db.name],
      );
      assert.deepEqual(rows.map((r) => r.ssl), [true], `connections by ssl: ${JSON.stringify(rows)}`);
    } finally {
      await service.stop();
    }
  });

  const refusals: Array<[string, () => Promise<void>, RegExp]> = [
    ["a certificate for another host name", () => pg.useTls(certs.server(ca, ["ledger.other.internal"], serverOwner())), /does not match certificate's altnames/i],
    ["a certificate from an untrusted CA", () => pg.useTls(certs.server(otherCa, ["127.0.0.1"], serverOwner())), /self[- ]signed certificate in certificate chain|unable to (verify|get local issuer)/i],
    ["a server without TLS (no fallback to cleartext)", () => pg.useTls(undefined), /does not support SSL/i],
  ];
  for (const [what, arrange, reason] of refusals) {
    it(`refuses ${what}: a clear error at start-up and at /readyz, and no payment`, async function () {
      await arrange();
      const service = await start();
      try {
        const line = await startupLine(service);
        assert.equal(line.msg, "database unreachable at start-up");
        assert.match(JSON.stringify(line.err), reason);
        assert.equal((await get(service, "/readyz")).status, 503);
        const notReady = await service.waitForLog((l) => l.msg === "not ready");
        assert.match(JSON.stringify(notReady.err), reason);

        const sender = await wallet(db.pool, "tls_refused_sender", 5_000);
        const receiver = await wallet(db.pool, "tls_refused_receiver", 0);
        const refused = await postPayment(service, { sender_id: sender, receiver_id: receiver, amount: 100, currency: "USD", payment_method_type: "wallet" });
        assert.equal(refused.status, 503);
        assert.deepEqual(await transactionsOf(db.pool, sender), [], "nothing written");
      } finally {
        await service.stop();
      }
    });
  }

  it("refuses to start when the CA bundle is not PEM, naming the variable", async function () {
    const { runToExit } = await import("./support/services");
    const { renderedEnv, testEnv } = await import("./support/services");
    const base = testEnv(await renderedEnv("payment-service"), env.intake.url, {
      ...db.env,
      FRAUD_SERVICE_URL: env.fraud.url,
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: ca.keyFile,
    });
    const result = await runToExit("payment-service", base);
    assert.equal(result.code, 1);
    assert.match(result.output, /PGSSLROOTCERT .* holds no PEM certificate/);
  });
});
