/**
 * Post-processing when things fail: nothing is lost and nothing is applied twice. Each case
 * runs its own relay and consumers on an exchange of its own; the broker "goes down" for
 * them through a TCP proxy the test cuts (the machine's RabbitMQ is shared, so it is never
 * stopped), PostgreSQL restarts for real (a private server), the relay is SIGKILLed while
 * its batch is published and not yet marked.
 */
import assert from "node:assert/strict";
import { Client } from "pg";
import { SENDER_LOCK_SPACE } from "../src/post-processing/events";
import { createTestDatabase, createWallet, type TestDatabase } from "./support/database";
import { e2e, postPayment, type E2E } from "./support/e2e";
import {
  BrokerProxy,
  brokerChannel,
  deleteTopology,
  directTransfer,
  eventually,
  fraudHistoryOf,
  queueName,
  queuedMessages,
  receiptCount,
  receiptsOf,
  startConsumers,
  startRelay,
  uniqueExchange,
  unpublishedCount,
} from "./support/post-processing";
import { PrivatePostgres } from "./support/private-servers";
import type { RunningService } from "./support/services";
import { SPANS, DETAIL_TAGS } from "../src/tracing/conventions";

describe("post-processing under failure: no event lost, none applied twice", function () {
  // Backoffs, restarts and a SIGKILLed relay: 20 s alone, longer under a loaded full suite.
  this.timeout(90_000);
  let env: E2E;
  const exchanges: string[] = [];
  const running: RunningService[] = [];
  const newExchange = () => {
    const exchange = uniqueExchange();
    exchanges.push(exchange);
    return exchange;
  };
  const track = (service: RunningService) => {
    running.push(service);
    return service;
  };

  before(async function () {
    // The first spec to ask builds the app and starts the shared services.
    this.timeout(120_000);
    env = await e2e();
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((s) => s.stop("SIGTERM", 5_000)));
  });

  after(async function () {
    for (const exchange of exchanges) await deleteTopology(exchange).catch(() => undefined);
  });

  /** `count` completed payments from `senders` in turn; resolves their transaction ids. */
  async function payments(count: number, senders: readonly string[], receiver: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const response = await postPayment(env.payment, {
        sender_id: senders[i % senders.length],
        receiver_id: receiver,
        amount: 100 + i,
        currency: "USD",
        payment_method_type: "wallet",
      });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      ids.push(String(response.body.transaction_id));
    }
    return ids;
  }

  async function wallets(label: string, senders: number) {
    const ids = await Promise.all(
      Array.from({ length: senders }, () => createWallet(env.db.pool, `${label}_sender`, { balance: 1_000_000, tier: "enterprise" })),
    );
    return { senders: ids, receiver: await createWallet(env.db.pool, `${label}_receiver`, { balance: 0 }) };
  }

  /** Exactly one receipt pair per payment and one history update per payment of each sender. */
  async function assertExactlyOnce(ids: readonly string[], perSender: ReadonlyMap<string, number>, what: () => string) {
    await eventually(
      async () => (await receiptCount(env.db.pool, ids)) >= 2 * ids.length,
      async () => `receipts ${await receiptCount(env.db.pool, ids)} of ${2 * ids.length}\n${what()}`,
    );
    await eventually(
      async () => {
        for (const [sender, n] of perSender) if ((await fraudHistoryOf(env.redisPrefix, sender)).payments < n) return false;
        return true;
      },
      async () => `history ${JSON.stringify(await Promise.all([...perSender.keys()].map((s) => fraudHistoryOf(env.redisPrefix, s))))}\n${what()}`,
    );
    const receipts = await receiptsOf(env.db.pool, ids);
    for (const id of ids) assert.deepEqual(receipts.get(id), ["receiver", "sender"], id);
    assert.equal(await receiptCount(env.db.pool, ids), 2 * ids.length);
    for (const [sender, n] of perSender) assert.equal((await fraudHistoryOf(env.redisPrefix, sender)).payments, n, sender);
    assert.equal(await unpublishedCount(env.db.pool, ids), 0);
  }

  const countBySender = (senders: readonly string[], count: number) =>
    new Map(senders.map((s, i) => [s, Math.floor(count / senders.length) + (i < count % senders.length ? 1 : 0)]));

  it("keeps events in the outbox while the broker is down, payments completing, and delivers each once when it is back", async function () {
    const exchange = newExchange();
    const proxy = await BrokerProxy.start();
    try {
      const wiring = { env, exchange, brokerPort: proxy.port };
      const [relay, consumers] = await Promise.all([startRelay(wiring), startConsumers(wiring)]).then((s) => s.map(track));
      const { senders, receiver } = await wallets("pp_down", 2);
      // One payment through, so the relay and both consumers hold connections when the broker goes.
      const earlier = await payments(1, senders, receiver);
      await eventually(async () => (await receiptCount(env.db.pool, earlier)) === 2, () => consumers.tail());
      assert.ok(proxy.connections >= 3, `relay and consumers connected through the proxy: ${proxy.connections}`);

      await proxy.cut();
      const ids = await payments(6, senders, receiver);
      await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox", 15_000);
      assert.equal(await unpublishedCount(env.db.pool, ids), 6, "the events wait in the outbox");
      assert.equal(await receiptCount(env.db.pool, ids), 0);
      // It keeps retrying, with growing delays.
      await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox" && Number(l.attempt) >= 3, 15_000);
      const delays = relay.logs.filter((l) => l.msg === "relay batch failed, events stay in the outbox").map((l) => Number(l.retryInMs));
      assert.ok(delays.at(-1)! >= 200, `backoff grows: ${delays}`);

      await proxy.restore();
      await assertExactlyOnce([...earlier, ...ids], countBySender(senders, 7), () => `${relay.tail()}\n${consumers.tail()}`);
      await relay.waitForLog((l) => l.msg === "relay recovered");
      assert.ok(consumers.logs.some((l) => l.msg === "broker unavailable, messages wait in the queue"), consumers.tail());
    } finally {
      await proxy.cut();
    }
  });

  it("republishes a batch whose relay was SIGKILLed after publishing it and before marking it; the consumers dedupe", async function () {
    const exchange = newExchange();
    const wiring = { env, exchange };
    const consumers = track(await startConsumers(wiring));
    const { senders, receiver } = await wallets("pp_kill", 3);
    const ids = await payments(9, senders, receiver);

    // SHARE mode lets the relay claim rows (FOR UPDATE) and publish them, and holds its
    // UPDATE … published_at: the relay stops between the broker's confirms and its commit.
    const blocker = await env.db.pool.connect();
    let relay: RunningService;
    try {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE outbox IN SHARE MODE");
      relay = track(await startRelay(wiring, { PG_STATEMENT_TIMEOUT_MS: "60000", RELAY_BATCH_SIZE: "500" }));
      await eventually(
        async () => (await receiptCount(env.db.pool, ids)) === 2 * ids.length,
        async () => `receipts ${await receiptCount(env.db.pool, ids)}\n${relay.tail()}\n${consumers.tail()}`,
      );
      assert.equal(await unpublishedCount(env.db.pool, ids), ids.length, "published and consumed, not yet marked");
      relay.child.kill("SIGKILL");
      await relay.exited;
    } finally {
      await blocker.query("COMMIT").catch(() => undefined);
      blocker.release();
    }
    assert.equal(await unpublishedCount(env.db.pool, ids), ids.length, "the killed relay's transaction rolled back");

    const again = track(await startRelay(wiring));
    await eventually(async () => (await unpublishedCount(env.db.pool, ids)) === 0, () => again.tail());
    const { rows } = await env.db.pool.query<{ id: string }>(`SELECT id::text FROM outbox WHERE aggregate_id = ANY($1::uuid[])`, [ids]);
    const eventIds = new Set(rows.map((r) => r.id));
    // Every event reached each consumer twice: applied once, then seen as a duplicate.
    const spans = await env.intake.waitForSpans(
      (all) => all.filter((s) => s.name === SPANS.postProcessing && s.meta[DETAIL_TAGS.duplicateEvent] === "true" && eventIds.has(s.meta[DETAIL_TAGS.eventId])).length >= 2 * ids.length,
      20_000,
    );
    const handled = spans.filter((s) => s.name === SPANS.postProcessing && s.meta[DETAIL_TAGS.consumer] && eventIds.has(s.meta[DETAIL_TAGS.eventId]));
    for (const consumer of ["receipts", "fraud-history"]) {
      const mine = handled.filter((s) => s.meta[DETAIL_TAGS.consumer] === consumer);
      assert.equal(mine.filter((s) => s.meta[DETAIL_TAGS.duplicateEvent] === "false").length, ids.length, `${consumer} applied each once`);
      assert.equal(mine.filter((s) => s.meta[DETAIL_TAGS.duplicateEvent] === "true").length, ids.length, `${consumer} saw each again`);
    }
    await assertExactlyOnce(ids, countBySender(senders, 9), () => consumers.tail());
  });

  it("leaves messages waiting in the queues while the consumers are down, and applies each once after their restart", async function () {
    const exchange = newExchange();
    const wiring = { env, exchange };
    const first = track(await startConsumers(wiring));
    const relay = track(await startRelay(wiring));
    const { senders, receiver } = await wallets("pp_restart", 2);
    const before = await payments(2, senders, receiver);
    await eventually(async () => (await receiptCount(env.db.pool, before)) === 4, () => first.tail());
    assert.equal(await first.stop(), 0, "graceful stop");

    const ids = await payments(5, senders, receiver);
    await eventually(async () => (await unpublishedCount(env.db.pool, ids)) === 0, () => relay.tail());
    for (const consumer of ["receipts", "fraud-history"] as const) {
      await eventually(
        async () => (await queuedMessages(queueName(exchange, consumer))) >= 5,
        async () => `${consumer}: ${await queuedMessages(queueName(exchange, consumer))} queued`,
      );
    }
    assert.equal(await receiptCount(env.db.pool, ids), 0);

    const second = track(await startConsumers(wiring));
    await assertExactlyOnce([...before, ...ids], countBySender(senders, 7), () => second.tail());
    for (const consumer of ["receipts", "fraud-history"] as const) assert.equal(await queuedMessages(queueName(exchange, consumer)), 0);
  });

  describe("against a database of their own", function () {
    let pg: PrivatePostgres;
    let db: TestDatabase;

    before(async function () {
      this.timeout(120_000);
      pg = await PrivatePostgres.start();
      db = await createTestDatabase(`pp_restart_${process.pid}`, pg.server);
    });

    after(async function () {
      await db?.pool.end().catch(() => undefined);
      await pg?.destroy();
    });

    const dbEnv = () => ({ PGHOST: pg.server.host, PGPORT: String(pg.server.port), PGUSER: pg.server.user, PGDATABASE: db.name });

    it("reconnects the relay and the consumers after PostgreSQL restarts, delivering each event once", async function () {
      const exchange = newExchange();
      const wiring = { env, exchange };
      const relay = track(await startRelay(wiring, dbEnv()));
      const consumers = track(await startConsumers(wiring, { ...dbEnv(), CONSUMERS: "receipts" }));
      const sender = await createWallet(db.pool, "pp_pg_sender", { balance: 100_000 });
      const receiver = await createWallet(db.pool, "pp_pg_receiver", { balance: 0 });
      const first = await directTransfer(db.pool, sender, receiver, 100);
      await eventually(async () => (await receiptCount(db.pool, [first])) === 2, () => consumers.tail());

      await pg.stopServer("fast");
      try {
        await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox", 15_000);
      } finally {
        await pg.startServer();
      }
      assert.equal(relay.child.exitCode, null, "the relay outlived the restart");

      const second = await directTransfer(db.pool, sender, receiver, 200);
      await eventually(async () => (await receiptCount(db.pool, [first, second])) === 4, async () => `${relay.tail()}\n${consumers.tail()}\n${pg.log()}`);
      assert.deepEqual(await receiptsOf(db.pool, [first, second]), new Map([[first, ["receiver", "sender"]], [second, ["receiver", "sender"]]]));
      assert.equal(await unpublishedCount(db.pool, [first, second]), 0);
    });

    /**
     * Two relays share the outbox; one sender's events must still reach the broker in commit
     * order. The case that broke it: relay A holds a sender's first events (its advisory lock
     * and their rows) when relay B's claim passes them, then A's batch rolls back while B's
     * claim is still reading; B's claim can then take the sender's lock at a later event and,
     * without the first-gap check, publish it before the earlier ones. Relay A is played here
     * by a transaction of the test, so the rollback can be timed: B's claim is made to read
     * past a long run of another sender's events (whose lock the test holds too), and A rolls
     * back as soon as a claim of B has started, while it is still running (checked, not assumed).
     */
    it("keeps a sender's events in commit order when another relay's claim of them rolls back during this relay's claim", async function () {
      this.timeout(120_000);
      const ROUNDS = 3;
      /** Enough for one claim to read for a few hundred milliseconds. */
      const BUSY_EVENTS = 200_000;
      const exchange = newExchange();
      const receiver = await createWallet(db.pool, "pp_order_receiver", { balance: 0 });
      const senders = await Promise.all(Array.from({ length: ROUNDS }, () => createWallet(db.pool, "pp_order_sender", { balance: 100_000 })));
      const busy = `pp_order_busy_${process.pid}`;
      const early: string[][] = [];
      for (const sender of senders) early.push([await directTransfer(db.pool, sender, receiver, 1), await directTransfer(db.pool, sender, receiver, 2)]);
      await db.pool.query(
        `INSERT INTO outbox (aggregate_id, event_type, payload)
         SELECT gen_random_uuid(), 'payment.completed', jsonb_build_object('sender_id', $1::text, 'n', n) FROM generate_series(1, $2::int) AS n`,
        [busy, BUSY_EVENTS],
      );
      const late: string[] = [];
      for (const sender of senders) late.push(await directTransfer(db.pool, sender, receiver, 3));
      await db.pool.query(`ANALYZE outbox`);

      const connect = async () => {
        const client = new Client({ ...pg.server, database: db.name });
        await client.connect();
        return client;
      };
      // "Relay A": each sender's first two events claimed, as its claim leaves them; the busy sender held throughout.
      const holders = await Promise.all(senders.map(connect));
      const busyHolder = await connect();
      const watcher = await connect();
      const clients = [...holders, busyHolder, watcher];
      try {
        for (const [i, holder] of holders.entries()) {
          await holder.query("BEGIN");
          await holder.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SENDER_LOCK_SPACE, senders[i]]);
          await holder.query("SELECT id FROM outbox WHERE aggregate_id = ANY($1::uuid[]) FOR UPDATE", [early[i]]);
        }
        await busyHolder.query("BEGIN");
        await busyHolder.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SENDER_LOCK_SPACE, busy]);

        const relay = track(await startRelay({ env, exchange }, { ...dbEnv(), RELAY_POLL_INTERVAL_MS: "100", RELAY_BATCH_SIZE: "10" }));
        let inside = 0;
        for (const [i, holder] of holders.entries()) {
          // A claim of relay B that has read its first rows, the sender's early events (the
          // claim reads in id order), and is still reading the busy sender's…
          let claim: { pid: number; started: string } | undefined;
          const deadline = Date.now() + 20_000;
          while (!claim) {
            const { rows } = await watcher.query<{ pid: number; started: string; reading: boolean }>(
              `SELECT pid, query_start::text AS started,
                      clock_timestamp() - query_start BETWEEN interval '60 milliseconds' AND interval '120 milliseconds' AS reading
                 FROM pg_stat_activity
                WHERE datname = $1 AND application_name = 'outbox-relay' AND state = 'active' AND query LIKE '%pg_try_advisory_xact_lock%'`,
              [db.name],
            );
            claim = rows.find((r) => r.reading);
            if (!claim && Date.now() > deadline) assert.fail(`no claim of the relay seen starting\n${relay.tail()}`);
          }
          // …then relay A's batch fails.
          await holder.query("ROLLBACK");
          const { rowCount } = await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query_start::text = $2 AND state = 'active'`, [claim.pid, claim.started]);
          if (rowCount === 1) inside += 1;
          await eventually(async () => (await unpublishedCount(db.pool, [...early[i], late[i]])) === 0, () => relay.tail());
        }
        assert.ok(inside >= 1, "no rollback landed while a claim was running: the case was not exercised");

        const { rows: events } = await db.pool.query<{ id: string; sender: string }>(
          `SELECT id::text, payload->>'sender_id' AS sender FROM outbox WHERE aggregate_id = ANY($1::uuid[]) ORDER BY outbox.id`,
          [[...early.flat(), ...late]],
        );
        assert.equal(events.length, ROUNDS * 3);
        const { channel, close } = await brokerChannel();
        const received: string[] = [];
        try {
          const queue = queueName(exchange, "receipts");
          await eventually(
            async () => {
              for (let m = await channel.get(queue, { noAck: true }); m; m = await channel.get(queue, { noAck: true })) received.push(String(m.properties.messageId));
              return received.length >= events.length;
            },
            () => `${received.length} of ${events.length} messages`,
          );
        } finally {
          await close();
        }
        assert.deepEqual([...received].sort(), events.map((e) => e.id).sort(), "each event published once");
        for (const sender of senders) {
          const committed = events.filter((e) => e.sender === sender).map((e) => e.id);
          assert.deepEqual(received.filter((id) => committed.includes(id)), committed, `${sender}'s events in commit order (${inside} of ${ROUNDS} rollbacks inside a claim)`);
        }
      } finally {
        await db.pool.query(`DELETE FROM outbox WHERE payload->>'sender_id' = $1`, [busy]);
        for (const client of clients) await client.end().catch(() => undefined);
      }
    });

    it("prunes published events past the retention window in bounded batches, and never an unpublished one", async function () {
      const exchange = newExchange();
      const sender = await createWallet(db.pool, "pp_prune_sender", { balance: 100_000 });
      const receiver = await createWallet(db.pool, "pp_prune_receiver", { balance: 0 });
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) ids.push(await directTransfer(db.pool, sender, receiver, 10 + i));
      const proxy = await BrokerProxy.start();
      try {
        // Broker unreachable: nothing gets published, so nothing may be pruned.
        await proxy.cut();
        const relay = track(
          await startRelay({ env, exchange, brokerPort: proxy.port }, { ...dbEnv(), RELAY_RETENTION_SECONDS: "1", RELAY_PRUNE_INTERVAL_MS: "200", RELAY_PRUNE_BATCH_SIZE: "2" }),
        );
        await relay.waitForLog((l) => l.msg === "relay batch failed, events stay in the outbox" && Number(l.attempt) >= 2, 15_000);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        assert.equal(await unpublishedCount(db.pool, ids), 5, "unpublished events stay");

        await proxy.restore();
        await eventually(
          async () => Number((await db.pool.query(`SELECT count(*) AS n FROM outbox WHERE aggregate_id = ANY($1::uuid[])`, [ids])).rows[0].n) === 0,
          () => relay.tail(),
        );
        const pruned = relay.logs.filter((l) => l.msg === "pruned published outbox events").map((l) => Number(l.deleted));
        assert.ok(pruned.reduce((a, b) => a + b, 0) >= 5, `${pruned}`);
        // Each DELETE removed at most RELAY_PRUNE_BATCH_SIZE rows.
        const deletes = env.intake.spans().filter((s) => s.name === SPANS.databaseQuery && s.resource === "prune_outbox" && s.metrics[DETAIL_TAGS.dbRowCount] > 0);
        assert.ok(deletes.length >= 3, `${deletes.length} pruning statements`);
        assert.ok(deletes.every((s) => s.metrics[DETAIL_TAGS.dbRowCount] <= 2), deletes.map((s) => s.metrics[DETAIL_TAGS.dbRowCount]).join(","));
      } finally {
        await proxy.cut();
      }
    });
  });
});
