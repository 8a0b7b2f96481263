/**
 * Money invariants under concurrency: thousands of random transfers, many in flight at
 * once, against the real payment-service and fraud-service, with retries of the same
 * Idempotency-Key (concurrent and sequential) and transfers that cannot be paid. Then the
 * whole database is audited: no money created or lost, no negative balance, every key
 * moved money at most once and every replay answered the first answer, every completed
 * transaction has its two ledger rows and nothing else has any.
 */
import assert from "node:assert/strict";
import { FAILURE_REASONS } from "../src/tracing/conventions";
import { startFraudService, startPaymentService } from "./support/e2e";
import {
  auditLedger,
  describeViolations,
  seedWallets,
  snapshotLedger,
  totalsByCurrency,
  transactionsByKey,
  type LedgerSnapshot,
  type SeedWallet,
} from "./support/ledger-audit";
import { fixedSeed, HttpClient, runPool, seededRandom, tally, type HttpAnswer } from "./support/load";
import { createWiring, runCleanups, type Wiring } from "./support/reliability";
import type { RunningService } from "./support/services";

const SEED = fixedSeed(20_261_125);
/** Transfer requests in the main run, retries of a key included. */
const REQUESTS = 5_000;
const IN_FLIGHT = 50;
/** Keys sent once more after the run, many at once. */
const REPLAYED_AT_THE_END = 200;

type Kind =
  /** An ordinary transfer: paid, or declined for funds (races) or by fraud screening. */
  | "ordinary"
  /** From a wallet that is empty and never credited: must be declined for funds. */
  | "from_empty"
  /** More than all the money in its currency: must be declined for funds. */
  | "above_all_money"
  /** To a user without a wallet in the currency. */
  | "unknown_receiver"
  /**
   * Sent at once with the opposite transfer (A to B with B to A) between well-funded
   * wallets: must be paid (or held, should fraud scoring degrade). Two transactions that
   * lock the same two wallets in opposite orders deadlock; the transfer locks both in one
   * order, so none may fail.
   */
  | "crossing";

type Retry = "none" | "concurrent" | "sequential";

interface Transfer {
  readonly key: string;
  readonly kind: Kind;
  readonly retry: Retry;
  /** Copies sent: at once for "concurrent", one after the other for "sequential". */
  readonly copies: number;
  readonly body: { sender_id: string; receiver_id: string; amount: number; currency: string; payment_method_type: string };
  readonly answers: HttpAnswer[];
}

/** What each kind may be answered. */
const ALLOWED: Record<Kind, ReadonlyArray<string>> = {
  ordinary: ["201", `402 ${FAILURE_REASONS.insufficientFunds}`, `402 ${FAILURE_REASONS.fraudReview}`, `402 ${FAILURE_REASONS.fraudBlocked}`],
  from_empty: [`402 ${FAILURE_REASONS.insufficientFunds}`],
  above_all_money: [`402 ${FAILURE_REASONS.insufficientFunds}`],
  unknown_receiver: [`422 ${FAILURE_REASONS.receiverNotFound}`],
  crossing: ["201", `402 ${FAILURE_REASONS.fraudReview}`],
};

/** Answers that mean "not done, retry with the same key": not stored, nothing moved. */
const TRANSIENT = [`503 ${FAILURE_REASONS.fraudUnavailable}`, `503 ${FAILURE_REASONS.databaseUnavailable}`];

function isSettled(answer: Pick<HttpAnswer, "status" | "body">): boolean {
  return !TRANSIENT.includes(outcome(answer)) && !isRetryableHold(answer);
}

/** A hold or block from a degraded fraud score (Redis slow or down): not stored either, a retry is scored again. */
function isRetryableHold(answer: Pick<HttpAnswer, "status" | "body">): boolean {
  const fraudDecline = [`402 ${FAILURE_REASONS.fraudReview}`, `402 ${FAILURE_REASONS.fraudBlocked}`];
  return fraudDecline.includes(outcome(answer)) && answer.body?.retryable === true;
}

function outcome(answer: Pick<HttpAnswer, "status" | "body">): string {
  const error = answer.body?.error;
  return typeof error === "string" ? `${answer.status} ${error}` : String(answer.status);
}

/**
 * 244 wallets: USD (mostly enterprise, some standard whose velocity fraud-service soon
 * holds), EUR, empty USD senders, and four well-funded USD wallets that pay each other.
 */
function walletsFor(random: () => number) {
  const wallets: SeedWallet[] = [];
  const usd: string[] = [];
  const eur: string[] = [];
  const empty: string[] = [];
  const balance = () => 20_000 + Math.floor(random() * 280_000);
  for (let i = 0; i < 190; i++) {
    const userId = `usd_${i}`;
    wallets.push({ userId, currency: "USD", balance: balance(), tier: i < 170 ? "enterprise" : "standard", country: "US" });
    usd.push(userId);
  }
  for (let i = 0; i < 40; i++) {
    const userId = `eur_${i}`;
    wallets.push({ userId, currency: "EUR", balance: balance(), tier: "enterprise", country: "DE" });
    eur.push(userId);
  }
  for (let i = 0; i < 10; i++) {
    const userId = `empty_${i}`;
    wallets.push({ userId, currency: "USD", balance: 0, tier: "enterprise", country: "US" });
    empty.push(userId);
  }
  const crossing: string[] = [];
  for (let i = 0; i < 4; i++) {
    const userId = `crossing_${i}`;
    wallets.push({ userId, currency: "USD", balance: 5_000_000, tier: "enterprise", country: "US" });
    crossing.push(userId);
  }
  // A few hot wallets that many transfers start from, so their balances are raced for.
  return { wallets, usd, eur, empty, crossing, hot: usd.slice(0, 8) };
}

describe("reliability: money invariants under concurrent transfers", function () {
  this.timeout(180_000);

  const cleanups: Array<() => Promise<unknown>> = [];
  let wiring: Wiring;
  let payment: RunningService;
  let client: HttpClient;
  let opening: LedgerSnapshot;
  const random = seededRandom(SEED);
  const plan = walletsFor(random);

  before(async function () {
    // Spans are sent and answered as by an agent, not decoded: this test is about money.
    wiring = await createWiring("rel_money", { intake: { capture: false } });
    cleanups.push(() => wiring.close());
    await seedWallets(wiring.db.pool, plan.wallets);
    opening = await snapshotLedger(wiring.db.pool);
    // Redis gets a deadline a loaded machine does not miss, so fraud scoring rarely degrades
    // (a degraded score holds the payment for review without storing it: retried below).
    const fraud = await startFraudService(wiring, { REDIS_COMMAND_TIMEOUT_MS: "1000" });
    cleanups.push(() => fraud.stop());
    payment = await startPaymentService(wiring, { FRAUD_SERVICE_URL: fraud.url });
    cleanups.push(() => payment.stop());
    client = new HttpClient(payment.url, IN_FLIGHT + 16);
    cleanups.push(async () => client.close());
  });

  after(async function () {
    await runCleanups(cleanups);
  });

  it(`keeps every money invariant over ${REQUESTS} random transfer requests, ${IN_FLIGHT} in flight, with retries (seed ${SEED})`, async function () {
    const totals = totalsByCurrency(opening.balances);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
    const other = (items: readonly string[], not: string) => {
      for (;;) {
        const candidate = pick(items);
        if (candidate !== not) return candidate;
      }
    };
    const amount = () => (random() < 0.85 ? 100 + Math.floor(random() * 30_000) : 50_000 + Math.floor(random() * 150_000));

    const transfers: Transfer[] = [];
    /** What one worker of the pool sends at once: a transfer (and its copies), or a burst of crossing transfers. */
    const jobs: Transfer[][] = [];
    const newTransfer = (kind: Kind, retry: Retry, copies: number, body: Transfer["body"]) => {
      const transfer: Transfer = { key: `rel-money-${SEED}-${transfers.length}`, kind, retry, copies, body, answers: [] };
      transfers.push(transfer);
      return transfer;
    };
    const wallet = (sender: string, receiver: string, amount: number, currency = "USD") => ({
      sender_id: sender,
      receiver_id: receiver,
      amount,
      currency,
      payment_method_type: "wallet",
    });
    for (let requests = 0; requests < REQUESTS; ) {
      if (random() < 0.01 && requests + 6 <= REQUESTS) {
        // Three pairs of opposite transfers, all in flight together.
        const burst: Transfer[] = [];
        for (let pair = 0; pair < 3; pair++) {
          const a = pick(plan.crossing);
          const b = other(plan.crossing, a);
          const value = 100 + Math.floor(random() * 900);
          burst.push(newTransfer("crossing", "none", 1, wallet(a, b, value)), newTransfer("crossing", "none", 1, wallet(b, a, value)));
        }
        jobs.push(burst);
        requests += burst.length;
        continue;
      }
      const r = random();
      const kind: Kind = r < 0.9 ? "ordinary" : r < 0.94 ? "from_empty" : r < 0.97 ? "above_all_money" : "unknown_receiver";
      const eur = kind === "ordinary" && random() < 0.15;
      const pool = eur ? plan.eur : plan.usd;
      const currency = eur ? "EUR" : "USD";
      let sender = kind === "from_empty" ? pick(plan.empty) : !eur && random() < 0.3 ? pick(plan.hot) : pick(pool);
      let receiver = kind === "unknown_receiver" ? pick(plan.eur) : other(pool, sender);
      let value = amount();
      if (kind === "above_all_money") {
        value = Number(totals.get(currency)!) + 1 + Math.floor(random() * 1_000);
        sender = pick(plan.usd);
        receiver = other(plan.usd, sender);
      }
      const d = random();
      let retry: Retry = d < 0.08 ? "concurrent" : d < 0.16 ? "sequential" : "none";
      let copies = retry === "none" ? 1 : retry === "concurrent" ? 2 + Math.floor(random() * 3) : 2 + Math.floor(random() * 2);
      if (requests + copies > REQUESTS) [retry, copies] = ["none", 1];
      requests += copies;
      jobs.push([newTransfer(kind, retry, copies, wallet(sender, receiver, value, currency))]);
    }
    assert.ok(Number(totals.get("USD")) < 100_000_000, "above_all_money amounts stay within the API's bound");

    const started = process.hrtime.bigint();
    const send = async (t: Transfer) => {
      if (t.retry === "concurrent") {
        t.answers.push(...(await Promise.all(Array.from({ length: t.copies }, () => client.pay(t.body, t.key)))));
      } else {
        for (let copy = 0; copy < t.copies; copy++) t.answers.push(await client.pay(t.body, t.key));
      }
    };
    await runPool(
      jobs.map((job) => async () => {
        await Promise.all(job.map(send));
      }),
      IN_FLIGHT,
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;

    // A 503 (fraud-service or the database too slow for its deadline, on a loaded machine) or a
    // retryable hold (fraud scoring degraded) is a legitimate answer that moves nothing and is
    // not stored: like a client, retry those keys until they get an answer that is stored (bounded).
    let unsettled = transfers.filter((t) => !t.answers.some(isSettled));
    for (let attempt = 0; attempt < 5 && unsettled.length; attempt++) {
      await runPool(
        unsettled.map((t) => async () => {
          t.answers.push(await client.pay(t.body, t.key));
        }),
        8,
      );
      unsettled = unsettled.filter((t) => !t.answers.some(isSettled));
    }

    // Replays long after the first answer, in flight together.
    const replayed = Array.from({ length: REPLAYED_AT_THE_END }, () => pick(transfers));
    await runPool(
      replayed.map((t) => async () => {
        t.answers.push(await client.pay(t.body, t.key));
      }),
      IN_FLIGHT,
    );

    const stored = (t: Transfer) => t.answers.find(isSettled);
    const transient = transfers.flatMap((t) => t.answers).filter((a) => !isSettled(a));
    console.log(
      `      ${REQUESTS} transfer requests (${transfers.length} keys, ` +
        `${transfers.filter((t) => t.retry === "concurrent").length} sent concurrently 2-4 times, ` +
        `${transfers.filter((t) => t.kind === "crossing").length} in bursts of crossing transfers, ` +
        `${transfers.filter((t) => t.retry === "sequential").length} retried sequentially) in ${seconds.toFixed(1)} s: ` +
        `${(REQUESTS / seconds).toFixed(0)} requests/s, ${IN_FLIGHT} in flight; ` +
        `stored answers ${JSON.stringify(tally(transfers.map((t) => stored(t) ?? t.answers[0])))}; ` +
        `transient answers (503s, retryable holds) ${JSON.stringify(tally(transient))}`,
    );

    const violations: string[] = [];
    // Each answer is one its kind allows (or a transient 503; a retryable hold must be allowed
    // as a hold), and every stored answer for a key is the first one stored.
    for (const t of transfers) {
      for (const answer of t.answers) {
        if (!ALLOWED[t.kind].includes(outcome(answer)) && !TRANSIENT.includes(outcome(answer))) {
          violations.push(`${t.key} (${t.kind}) answered ${answer.status} ${answer.raw.slice(0, 200)}`);
        }
      }
      const first = stored(t);
      if (!first) {
        violations.push(`${t.key}: only transient answers after ${t.answers.length} attempts: ${t.answers[0].raw}`);
        continue;
      }
      for (const answer of t.answers.filter(isSettled)) {
        try {
          assert.deepEqual({ status: answer.status, body: answer.body }, { status: first.status, body: first.body });
        } catch {
          violations.push(`${t.key} (${t.retry}) answered ${answer.status} ${answer.raw}, first ${first.status} ${first.raw}`);
        }
      }
    }

    // Each key has one stored transaction, and it is what the client was told.
    const rows = await transactionsByKey(wiring.db.pool);
    let paid = 0;
    let paidAmount = 0n;
    for (const t of transfers) {
      const first = stored(t);
      const row = rows.get(t.key);
      if (!first) {
        if (row) violations.push(`${t.key}: only transient answers, yet stored ${row.status}`);
        continue;
      }
      if (!row) {
        violations.push(`${t.key}: answered ${first.status} but nothing stored`);
        continue;
      }
      if (first.status === 201) {
        paid += 1;
        paidAmount += BigInt(t.body.amount);
        if (row.status !== "completed" || row.id !== first.body?.transaction_id) {
          violations.push(`${t.key}: answered 201 ${first.body?.transaction_id}, stored ${row.status} ${row.id}`);
        }
      } else if (row.status !== "declined" || row.responseStatus !== first.status) {
        violations.push(`${t.key}: answered ${first.status}, stored ${row.status} ${row.responseStatus}`);
      } else {
        try {
          assert.deepEqual(row.responseBody, first.body);
        } catch {
          violations.push(`${t.key}: stored answer ${JSON.stringify(row.responseBody)} differs from ${first.raw}`);
        }
      }
    }
    if (rows.size !== transfers.length) violations.push(`${rows.size} transactions stored for ${transfers.length} keys`);

    const audit = await auditLedger(wiring.db.pool, opening);
    violations.push(...audit.violations);
    if (audit.completed !== paid) violations.push(`${audit.completed} completed transactions, ${paid} keys answered 201`);
    if (audit.moved !== paidAmount) violations.push(`${audit.moved} moved in the ledger, ${paidAmount} answered as paid`);
    const { rows: events } = await wiring.db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM outbox WHERE event_type = 'payment.completed'`,
    );
    if (Number(events[0].n) !== paid) violations.push(`${events[0].n} payment.completed events for ${paid} payments`);

    assert.equal(violations.length, 0, describeViolations(violations));

    // The run exercised what it claims to: mostly paid, some races for funds, retries of both kinds.
    const ordinary = transfers.filter((t) => t.kind === "ordinary");
    const ordinaryPaid = ordinary.filter((t) => stored(t)?.status === 201).length;
    assert.ok(ordinaryPaid > 0.6 * ordinary.length, `most ordinary transfers paid: ${ordinaryPaid}/${ordinary.length}`);
    assert.ok(
      ordinary.some((t) => stored(t)?.body?.error === FAILURE_REASONS.insufficientFunds),
      "some ordinary transfers lost a race for funds",
    );
    for (const retry of ["concurrent", "sequential"] as const) {
      assert.ok(
        transfers.some((t) => t.retry === retry && t.answers.filter((a) => a.status === 201).length > 1),
        `some paid transfers were answered 201 more than once (${retry})`,
      );
    }
  });
});
