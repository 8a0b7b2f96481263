/**
 * Idempotency-Keys belong to their user (the authenticated sender) and live for a window:
 * the same key from two users is two payments, one user learns nothing of another's keys,
 * and past the window a key is free again; expired keys are released in small batches.
 */
import assert from "node:assert/strict";
import { SERVICES, SPANS } from "../src/tracing/conventions";
import { balanceOf, createWallet, transactionsOf } from "./support/database";
import { e2e, newKey, paymentWithFraudStandIn, postPayment, startPaymentService, type E2E } from "./support/e2e";
import { seedWallets } from "./support/ledger-audit";
import { createWiring, type Wiring } from "./support/reliability";
import type { RunningService } from "./support/services";

const payment = (sender: string, receiver: string, amount: number) => ({
  sender_id: sender,
  receiver_id: receiver,
  amount,
  currency: "USD",
  payment_method_type: "wallet",
});

/** A wallet in a spec's own database (createWallet counts towards the shared database's opening total). */
async function walletIn(wiring: Wiring, label: string, balance: number): Promise<string> {
  const userId = `${label}_${process.pid}`;
  await seedWallets(wiring.db.pool, [{ userId, currency: "USD", balance, tier: "standard", country: "US" }]);
  return userId;
}

describe("idempotency keys scoped per user", function () {
  let env: E2E;

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
  });

  it("makes two payments of the same key from two users, each replayed to its own user only", async function () {
    const { payment: service } = await paymentWithFraudStandIn();
    const [alice, mallory, receiver] = await Promise.all([
      createWallet(env.db.pool, "key_alice", { balance: 10_000 }),
      createWallet(env.db.pool, "key_mallory", { balance: 10_000 }),
      createWallet(env.db.pool, "key_receiver", { balance: 0 }),
    ]);
    const key = newKey();
    // Mallory takes the key first, with another request: before, Alice's payment then answered 422.
    const taken = await postPayment(service, payment(mallory, receiver, 100), { "idempotency-key": key });
    assert.equal(taken.status, 201);
    const paid = await postPayment(service, payment(alice, receiver, 2_500), { "idempotency-key": key });
    assert.equal(paid.status, 201, JSON.stringify(paid.body));
    assert.notEqual(paid.body.transaction_id, taken.body.transaction_id);
    assert.equal(await balanceOf(env.db.pool, alice), 7_500n);
    assert.equal(await balanceOf(env.db.pool, mallory), 9_900n);

    // Each user's retry replays their own answer, never the other's.
    const replayed = await postPayment(service, payment(alice, receiver, 2_500), { "idempotency-key": key });
    assert.deepEqual(replayed, paid);
    const probe = await postPayment(service, payment(mallory, receiver, 2_500), { "idempotency-key": key });
    assert.equal(probe.status, 422, "Mallory's own key, used for another request");
    assert.equal(probe.body.transaction_id, undefined, "nothing of Alice's payment");
    assert.ok(!JSON.stringify(probe.body).includes(alice));
    assert.equal(await balanceOf(env.db.pool, alice), 7_500n, "moved once");
    assert.equal((await transactionsOf(env.db.pool, alice)).length, 1);
  });

  describe("past the window (a database of its own: the pruning releases every expired key in it)", function () {
    let service: RunningService;
    let wiring: Wiring;

    before(async function () {
      this.timeout(120_000);
      const { standIn } = await paymentWithFraudStandIn();
      wiring = await createWiring("idem_window");
      service = await startPaymentService(wiring, {
        FRAUD_SERVICE_URL: standIn.url,
        IDEMPOTENCY_WINDOW_SECONDS: "1",
        IDEMPOTENCY_PRUNE_INTERVAL_MS: "300",
        IDEMPOTENCY_PRUNE_BATCH: "2",
      });
    });

    after(async function () {
      await service.stop();
      await wiring.close();
    });

    it("replays within the window, then takes the key for a new payment; the old transaction stays", async function () {
      const sender = await walletIn(wiring, "key_window", 10_000);
      const receiver = await walletIn(wiring, "key_window_to", 0);
      const key = newKey();
      const first = await postPayment(service, payment(sender, receiver, 1_000), { "idempotency-key": key });
      assert.equal(first.status, 201);
      const replay = await postPayment(service, payment(sender, receiver, 1_000), { "idempotency-key": key });
      assert.deepEqual(replay, first);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      const second = await postPayment(service, payment(sender, receiver, 300), { "idempotency-key": key });
      assert.equal(second.status, 201, JSON.stringify(second.body));
      assert.notEqual(second.body.transaction_id, first.body.transaction_id);
      assert.equal(await balanceOf(wiring.db.pool, sender), 8_700n);
      const rows = await transactionsOf(wiring.db.pool, sender);
      assert.equal(rows.length, 2, "the first payment is still in the ledger");
      assert.equal(rows.find((r) => r.id === first.body.transaction_id)?.idempotency_key, null, "its key released");
    });

    it("releases expired keys in the background, in batches of IDEMPOTENCY_PRUNE_BATCH", async function () {
      const sender = await walletIn(wiring, "key_pruned", 10_000);
      const receiver = await walletIn(wiring, "key_pruned_to", 0);
      for (let i = 0; i < 5; i++) {
        assert.equal((await postPayment(service, payment(sender, receiver, 10 + i))).status, 201);
      }
      const held = async () =>
        (await wiring.db.pool.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM transactions WHERE sender_id = $1 AND idempotency_key IS NOT NULL`,
          [sender],
        )).rows[0].n;
      assert.equal(await held(), "5");
      const deadline = Date.now() + 10_000;
      while ((await held()) !== "0" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(await held(), "0", "every expired key released");
      assert.equal((await transactionsOf(wiring.db.pool, sender)).length, 5, "no transaction deleted");
      const batches = wiring.intake
        .spans()
        .filter((s) => s.service.startsWith(SERVICES.payment) && s.name === SPANS.databaseQuery && s.resource === "prune_idempotency_keys");
      // Five keys, at most two per statement: one unbounded statement would have taken them all.
      assert.ok(batches.length >= 3, `${batches.length} prune statements`);
    });
  });
});
