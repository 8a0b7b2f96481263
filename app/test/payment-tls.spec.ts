import assert from "node:assert/strict";
import { SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { createTestDatabase, type TestDatabase } from "./support/database";
import { e2e, postPayment, startFraudService, startPaymentService, type E2E } from "./support/e2e";
import type { RunningService } from "./support/services";
import { sslConnections, TlsServers } from "./support/tls-servers";
import type { CapturedSpan } from "./support/trace-intake";
import { describe as describeTrace, tagged, waitForTrace } from "./support/traces";

const portOf = (span: CapturedSpan) => Number(span.meta["network.destination.port"] ?? span.metrics["network.destination.port"]);

/**
 * The whole payment flow as prod wires it: both services started with the env the program
 * renders, payment-service to a PostgreSQL of the test's own over TLS (verify-full) and
 * fraud-service to a redis-server that serves TLS only, with an AUTH token.
 */
describe("a payment end to end with TLS to PostgreSQL and Redis", function () {
  this.timeout(120_000);
  let env: E2E;
  let servers: TlsServers;
  let db: TestDatabase;
  let fraud: RunningService | undefined;
  let payment: RunningService | undefined;

  before(async function () {
    env = await e2e();
    servers = await TlsServers.start();
    db = await createTestDatabase(`payments_e2e_tls_${process.pid}`, servers.pg.server);
    const wiring = { intake: env.intake, rendered: env.rendered, redisPrefix: `e2e-tls:${process.pid}:`, db: { ...db, env: { ...db.env, ...servers.pgEnv() } } };
    fraud = await startFraudService(wiring, servers.redisEnv());
    payment = await startPaymentService(wiring, { FRAUD_SERVICE_URL: fraud.url });
  });

  after(async function () {
    await payment?.stop();
    await fraud?.stop();
    await db?.drop().catch(() => undefined);
    await servers?.destroy();
  });

  it("completes a payment, traced across both services, over encrypted ledger and Redis connections", async function () {
    const [sender, receiver] = [`tls_e2e_sender_${process.pid}`, `tls_e2e_receiver_${process.pid}`];
    await db.pool.query(
      `INSERT INTO wallets (user_id, currency, balance, customer_tier, country) VALUES ($1, 'USD', 10000, 'standard', 'US'), ($2, 'USD', 0, 'standard', 'GB')`,
      [sender, receiver],
    );
    const paid = await postPayment(payment!, { sender_id: sender, receiver_id: receiver, amount: 2_500, currency: "USD", payment_method_type: "wallet" });
    assert.equal(paid.status, 201, JSON.stringify(paid.body));
    const id = String(paid.body.transaction_id);

    const { rows } = await db.pool.query<{ status: string; entries: number; receiver: string }>(
      `SELECT t.status, (SELECT count(*)::int FROM ledger_entries e WHERE e.transaction_id = t.id) AS entries,
              (SELECT balance::text FROM wallets WHERE user_id = $2) AS receiver
         FROM transactions t WHERE t.id = $1`,
      [id, receiver],
    );
    assert.deepEqual(rows, [{ status: "completed", entries: 2, receiver: "2500" }]);
    assert.deepEqual(await sslConnections(db.pool, SERVICES.payment, db.name), [true], "every payment-service connection encrypted");

    const trace = await waitForTrace(env.intake, tagged(TAGS.transactionId, id), [SERVICES.payment, SERVICES.fraud]);
    const names = trace.map((s) => `${s.service} ${s.name}`);
    for (const expected of [SPANS.userAuthentication, SPANS.processPayment, SPANS.validation, SPANS.processing, SPANS.fraudDetection]) {
      assert.ok(names.includes(`${SERVICES.payment} ${expected}`), `${expected} in:\n${describeTrace(trace)}`);
    }
    for (const expected of [SPANS.serviceAuthentication, SPANS.fraudDetection, SPANS.riskScoring]) {
      assert.ok(names.includes(`${SERVICES.fraud} ${expected}`), `${expected} in:\n${describeTrace(trace)}`);
    }
    const statements = trace.filter((s) => s.service === `${SERVICES.payment}-postgres`);
    assert.ok(statements.length >= 2, describeTrace(trace));
    assert.deepEqual([...new Set(statements.map(portOf))], [servers.pg.server.port], "the statements went to the TLS PostgreSQL");
    const commands = trace.filter((s) => s.service === `${SERVICES.fraud}-redis`);
    assert.ok(commands.length >= 1, describeTrace(trace));
    assert.deepEqual([...new Set(commands.map(portOf))], [servers.redis.port], "the history read went to the TLS-only redis-server");
    assert.deepEqual(commands.filter((s) => s.error), [], "and was answered");
  });
});
