/**
 * The outbox relay and the consumers to PostgreSQL over TLS, verify-full, as the program
 * renders them (PGSSLMODE=verify-full, PGSSLROOTCERT = the mounted CA bundle): a private
 * server with ssl=on and certificates made here. With the right CA both work and every
 * connection of theirs is encrypted; with an untrusted CA or a server without TLS they
 * refuse the connection with a clear error, and the events wait (nothing published, nothing
 * written).
 */
import assert from "node:assert/strict";
import { type CertificateAuthority, CertificateFactory } from "./support/certificates";
import { createTestDatabase, createWallet, type TestDatabase } from "./support/database";
import { e2e, type E2E } from "./support/e2e";
import { deleteTopology, directTransfer, eventually, queuedMessages, queueName, receiptCount, startConsumers, startRelay, uniqueExchange, unpublishedCount } from "./support/post-processing";
import { PrivatePostgres, serverOwner } from "./support/private-servers";
import type { RunningService } from "./support/services";

describe("post-processing to PostgreSQL over TLS (verify-full)", function () {
  this.timeout(120_000);
  let env: E2E;
  let pg: PrivatePostgres;
  let db: TestDatabase;
  let certs: CertificateFactory;
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  const running: RunningService[] = [];
  const exchanges: string[] = [];

  before(async function () {
    env = await e2e();
    certs = new CertificateFactory();
    ca = certs.ca("ledger-ca");
    otherCa = certs.ca("other-ca");
    pg = await PrivatePostgres.start();
    await pg.useTls(certs.server(ca, ["127.0.0.1"], serverOwner()));
    db = await createTestDatabase(`pp_tls_${process.pid}`, pg.server);
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((s) => s.stop("SIGTERM", 5_000)));
  });

  after(async function () {
    for (const exchange of exchanges) await deleteTopology(exchange).catch(() => undefined);
    await db?.pool.end().catch(() => undefined);
    await pg?.destroy();
  });

  /** The rendered TLS settings, the bundle pointed at `bundle` (the test CA by default). */
  const tls = (bundle: CertificateAuthority = ca) => ({ ...db.env, PGSSLMODE: "verify-full", PGSSLROOTCERT: bundle.certFile });
  const wiring = () => {
    const exchange = uniqueExchange();
    exchanges.push(exchange);
    return { env, exchange };
  };
  const track = (service: RunningService) => {
    running.push(service);
    return service;
  };
  const payment = async (label: string) => {
    const sender = await createWallet(db.pool, `${label}_sender`, { balance: 10_000 });
    const receiver = await createWallet(db.pool, `${label}_receiver`, { balance: 0 });
    return directTransfer(db.pool, sender, receiver, 500);
  };

  it("publishes, marks and writes receipts over TLS, every connection of the relay and the consumers encrypted", async function () {
    const w = wiring();
    const relay = track(await startRelay(w, tls()));
    const consumers = track(await startConsumers(w, { ...tls(), CONSUMERS: "receipts" }));
    const id = await payment("pp_tls");
    await eventually(async () => (await receiptCount(db.pool, [id])) === 2, () => `${relay.tail()}\n${consumers.tail()}`);
    assert.equal(await unpublishedCount(db.pool, [id]), 0);
    const { rows } = await db.pool.query<{ application_name: string; ssl: boolean }>(
      `SELECT DISTINCT a.application_name, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
        WHERE a.datname = $1 AND a.application_name IN ('outbox-relay', 'post-processing') ORDER BY 1`,
      [db.name],
    );
    assert.deepEqual(rows, [
      { application_name: "outbox-relay", ssl: true },
      { application_name: "post-processing", ssl: true },
    ]);
  });

  it("refuses a server whose certificate is from an untrusted CA: the relay publishes nothing, the consumers write nothing and keep the message", async function () {
    const w = wiring();
    const id = await payment("pp_tls_untrusted");
    const untrusted = /self[- ]signed certificate in certificate chain|unable to (verify|get local issuer)/i;
    const relay = track(await startRelay(w, tls(otherCa)));
    const failed = await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox", 15_000);
    assert.match(JSON.stringify(failed.err), untrusted);
    assert.equal(await unpublishedCount(db.pool, [id]), 1, "the event waits in the outbox");
    await relay.stop("SIGTERM", 5_000);

    // The relay with the right bundle publishes it; consumers with the wrong one refuse the database.
    const consumers = track(await startConsumers(w, { ...tls(otherCa), CONSUMERS: "receipts" }));
    track(await startRelay(w, tls()));
    const requeued = await consumers.waitForLog((l) => l.msg === "dependency unavailable, event requeued", 15_000);
    assert.match(JSON.stringify(requeued.err), untrusted);
    assert.equal(await receiptCount(db.pool, [id]), 0, "no receipt written");
    await consumers.stop("SIGTERM", 5_000);
    assert.equal(await queuedMessages(queueName(w.exchange, "receipts")), 1, "the message waits in the queue, not dead-lettered");
  });

  it("refuses a server without TLS (no fallback to cleartext): the event waits in the outbox", async function () {
    const w = wiring();
    const id = await payment("pp_tls_cleartext");
    await pg.useTls(undefined);
    try {
      const relay = track(await startRelay(w, tls()));
      const failed = await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox", 15_000);
      assert.match(JSON.stringify(failed.err), /does not support SSL/i);
      assert.equal(await unpublishedCount(db.pool, [id]), 1);
    } finally {
      await Promise.all(running.splice(0).map((s) => s.stop("SIGTERM", 5_000)));
      await pg.useTls(certs.server(ca, ["127.0.0.1"], serverOwner()));
    }
  });
});
