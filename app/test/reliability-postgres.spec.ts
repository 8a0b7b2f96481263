/**
 * PostgreSQL restarted under load: a private server (the machine's shared one is left
 * alone) is stopped while payments are in flight, kept down for a while, and started
 * again, once with a fast shutdown and once with an immediate one (a crash: the server
 * recovers from its WAL). payment-service is never restarted.
 *
 * Defined outcome: a payment caught by the outage answers 503 database_unavailable and
 * is never half-made; the service recovers by itself; a retry with the same key pays
 * exactly once (or replays the payment, when the outage only swallowed its COMMIT's
 * acknowledgement); the ledger stays sound.
 */
import assert from "node:assert/strict";
import type { Pool } from "pg";
import { FAILURE_REASONS, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { startPaymentService } from "./support/e2e";
import { FraudStandIn } from "./support/fraud-stand-in";
import {
  auditLedger,
  describeViolations,
  seedWallets,
  snapshotLedger,
  transactionsByKey,
  type SeedWallet,
} from "./support/ledger-audit";
import { HttpClient, runPool, seededRandom, tally, type HttpAnswer } from "./support/load";
import { PrivatePostgres, type StopMode } from "./support/private-servers";
import { createWiring, runCleanups, type Wiring } from "./support/reliability";
import type { RunningService } from "./support/services";
import { tagged, waitForTrace } from "./support/traces";

const IN_FLIGHT = 16;
/** Upper bound on the answers one scenario may take to reach its milestones. */
const MAX_ANSWERS = 4_000;

type Phase = "before" | "stopping" | "down" | "starting" | "after";

interface Sent {
  readonly key: string;
  readonly body: { sender_id: string; receiver_id: string; amount: number; currency: string; payment_method_type: string };
  readonly sentIn: Phase;
  readonly answeredIn: Phase;
  readonly answer: HttpAnswer;
}

/**
 * Payments sent continuously, `IN_FLIGHT` at a time, until stopped; `until` resolves at a
 * milestone counted on the answers, or fails past `MAX_ANSWERS`.
 */
class PaymentStream {
  readonly sent: Sent[] = [];
  phase: Phase = "before";
  private stopped = false;
  private workers: Promise<void>[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: unknown;

  constructor(
    private readonly client: HttpClient,
    private readonly next: () => Pick<Sent, "key" | "body">,
  ) {}

  start(): void {
    this.workers = Array.from({ length: IN_FLIGHT }, async () => {
      while (!this.stopped && this.sent.length < MAX_ANSWERS) {
        const { key, body } = this.next();
        const sentIn = this.phase;
        try {
          const answer = await this.client.pay(body, key);
          this.sent.push({ key, body, sentIn, answeredIn: this.phase, answer });
        } catch (error) {
          this.failure ??= error;
          this.stopped = true;
        }
        for (const waiter of [...this.waiters]) waiter();
      }
    });
  }

  until(what: string, done: (sent: readonly Sent[]) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) reject(this.failure);
        else if (done(this.sent)) resolve();
        else if (this.sent.length >= MAX_ANSWERS || this.stopped) {
          reject(new Error(`${what}: not reached after ${this.sent.length} answers: ${JSON.stringify(tally(this.sent.map((s) => s.answer)))}`));
        } else return;
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    if (this.failure) throw this.failure;
  }
}

/** Waits until at least `n` statements on the server wait for a lock (10 s at most). */
async function waitForLockWaits(pool: Pool, n: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool.query<{ waiting: number }>(
      "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
    );
    if (rows[0].waiting >= n) return;
    if (Date.now() > until) throw new Error(`no payment waited for the locked wallet within 10 s (${rows[0].waiting})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function outcome(answer: Pick<HttpAnswer, "status" | "body">): string {
  const error = answer.body?.error;
  return typeof error === "string" ? `${answer.status} ${error}` : String(answer.status);
}

describe("reliability: PostgreSQL restarted under load", function () {
  this.timeout(120_000);

  const cleanups: Array<() => Promise<unknown>> = [];
  let postgres: PrivatePostgres;
  let wiring: Wiring;
  let standIn: FraudStandIn;
  let service: RunningService;
  let client: HttpClient;
  const senders = Array.from({ length: 60 }, (_, i) => `pg_sender_${i}`);
  const receivers = Array.from({ length: 20 }, (_, i) => `pg_receiver_${i}`);
  const random = seededRandom(15);

  before(async function () {
    postgres = await PrivatePostgres.start();
    cleanups.push(() => postgres.destroy());
    wiring = await createWiring("rel_pg", { server: postgres.server });
    cleanups.push(() => wiring.close());
    const wallets: SeedWallet[] = [...senders, ...receivers].map((userId) => ({
      userId,
      currency: "USD",
      balance: 10_000_000,
      tier: "enterprise",
      country: "US",
    }));
    await seedWallets(wiring.db.pool, wallets);
    standIn = await FraudStandIn.start();
    cleanups.push(() => standIn.close());
    // A deadline a loaded machine cannot miss: the subject is the database.
    service = await startPaymentService(wiring, { FRAUD_SERVICE_URL: standIn.url, FRAUD_TIMEOUT_MS: "10000" });
    cleanups.push(() => service.stop());
    client = new HttpClient(service.url, IN_FLIGHT + 4);
    cleanups.push(async () => client.close());
  });

  after(async function () {
    await runCleanups(cleanups);
  });

  async function restartUnderLoad(mode: StopMode): Promise<void> {
    const opening = await snapshotLedger(wiring.db.pool);
    const pid = service.child.pid;
    let n = 0;
    const stream = new PaymentStream(client, () => {
      n += 1;
      const sender = senders[Math.floor(random() * senders.length)];
      const receiver = receivers[Math.floor(random() * receivers.length)];
      return {
        key: `rel-pg-${mode}-${process.pid}-${n}`,
        body: { sender_id: sender, receiver_id: receiver, amount: 100 + Math.floor(random() * 900), currency: "USD", payment_method_type: "wallet" },
      };
    });

    stream.start();
    try {
      await stream.until("60 payments before the restart", (s) => s.filter((x) => x.answer.status === 201).length >= 60);
      // Work the outage must catch: one sender's wallet row stays locked by a transaction of
      // the test's, so that sender's payments are waiting inside transfer_funds when the
      // server goes down. Without it, whether any payment is still mid-flight at that moment
      // depends on how fast the service answers.
      const locker = await wiring.db.pool.connect();
      locker.on("error", () => undefined);
      await locker.query("BEGIN");
      await locker.query("SELECT 1 FROM wallets WHERE user_id = $1 FOR UPDATE", [senders[0]]);
      await waitForLockWaits(wiring.db.pool, 1);
      stream.phase = "stopping";
      await postgres.stopServer(mode);
      locker.release(true);
      stream.phase = "down";
      await stream.until("20 payments sent while the server is down", (s) => s.filter((x) => x.sentIn === "down").length >= 20);
      stream.phase = "starting";
      await postgres.startServer();
      stream.phase = "after";
      await stream.until(
        "60 payments paid after the restart",
        (s) => s.filter((x) => x.sentIn === "after" && x.answer.status === 201).length >= 60,
      );
    } catch (error) {
      await stream.stop().catch(() => undefined);
      const exited = service.child.exitCode !== null || service.child.signalCode !== null;
      throw new Error(
        `${(error as Error).message}\npayment-service ${exited ? `exited (${service.child.exitCode ?? service.child.signalCode})` : "running"}:\n${service.tail(40)}`,
        { cause: error },
      );
    }
    await stream.stop();

    const sent = stream.sent;
    const byPhase = (phase: Phase) => tally(sent.filter((s) => s.sentIn === phase).map((s) => s.answer));
    console.log(
      `      ${mode}: ${sent.length} payments; sent before: ${JSON.stringify(byPhase("before"))}, while stopping: ` +
        `${JSON.stringify(byPhase("stopping"))}, down: ${JSON.stringify(byPhase("down"))}, while starting: ` +
        `${JSON.stringify(byPhase("starting"))}, after: ${JSON.stringify(byPhase("after"))}`,
    );

    // Paid, or failed cleanly with the database's error code: nothing else.
    const unexpected = sent.filter((s) => !["201", `503 ${FAILURE_REASONS.databaseUnavailable}`].includes(outcome(s.answer)));
    assert.deepEqual(unexpected.map((s) => `${s.key} (sent ${s.sentIn}): ${s.answer.status} ${s.answer.raw}`), []);
    const failed = sent.filter((s) => s.answer.status !== 201);
    assert.ok(
      failed.some((s) => s.sentIn === "before"),
      "payments in flight when the server went down failed (the outage hit work in progress)",
    );
    const whileDown = sent.filter((s) => s.sentIn === "down" && s.answeredIn === "down");
    assert.ok(whileDown.length >= 1 && whileDown.every((s) => s.answer.status === 503), "nothing is paid while the server is down");

    // The same process serves again: ready, and paying.
    assert.equal(service.child.exitCode, null, "payment-service kept running");
    assert.equal(service.child.pid, pid);
    const ready = await client.request({ method: "GET", path: "/readyz" });
    assert.equal(ready.status, 200, ready.raw);

    // The span says why.
    const failedSender = failed[failed.length - 1].body.sender_id;
    const trace = await waitForTrace(
      wiring.intake,
      (span) =>
        span.name === SPANS.processPayment &&
        span.meta[TAGS.failureReason] === FAILURE_REASONS.databaseUnavailable &&
        tagged(TAGS.senderId, failedSender)(span),
      [SERVICES.payment],
    );
    const failedSpan = trace.find((s) => s.name === SPANS.processPayment)!;
    assert.equal(failedSpan.error, 1);
    assert.equal(failedSpan.meta[TAGS.finalStatus], "failed");

    // Before any retry: a failed key either left nothing behind, or (its COMMIT went through
    // but the acknowledgement was lost with the connection) a whole completed payment.
    let stored = await transactionsByKey(wiring.db.pool);
    const committedDespite503 = failed.filter((s) => stored.get(s.key)?.status === "completed");
    for (const s of failed) {
      const row = stored.get(s.key);
      assert.ok(row === undefined || row.status === "completed", `${s.key}: ${row?.status}`);
    }
    for (const s of committedDespite503) {
      assert.doesNotMatch(String(s.answer.body?.message), /was not made/, `${s.key} was made: its 503 must not say otherwise`);
    }
    const midway = await auditLedger(wiring.db.pool, opening);
    assert.equal(midway.violations.length, 0, describeViolations(midway.violations));

    // Clients retry every failed payment with its key: each is paid exactly once.
    const retried = await runPool(failed.map((s) => () => client.pay(s.body, s.key)), IN_FLIGHT);
    assert.deepEqual(tally(retried), { "201": failed.length }, "every retry is paid (or replays its payment)");
    stored = await transactionsByKey(wiring.db.pool);
    let paid = 0n;
    for (const s of sent) {
      const row = stored.get(s.key);
      assert.equal(row?.status, "completed", s.key);
      paid += BigInt(s.body.amount);
    }
    const retriedById = new Map(retried.map((a, i) => [failed[i].key, a.body?.transaction_id]));
    for (const s of sent) {
      const expected = s.answer.status === 201 ? s.answer.body?.transaction_id : retriedById.get(s.key);
      assert.equal(stored.get(s.key)?.id, expected, `${s.key}: the stored payment is the one answered`);
    }
    const audit = await auditLedger(wiring.db.pool, opening);
    assert.equal(audit.violations.length, 0, describeViolations(audit.violations));
    const { rows } = await wiring.db.pool.query<{ moved: string }>(
      `SELECT coalesce(sum(amount), 0)::text AS moved FROM transactions WHERE idempotency_key LIKE $1`,
      [`rel-pg-${mode}-${process.pid}-%`],
    );
    assert.equal(BigInt(rows[0].moved), paid, "each key moved its amount once");
    console.log(
      `      ${mode}: ${failed.length} failed with 503 (${committedDespite503.length} of them committed before the ` +
        `connection dropped; their retries replayed the payment), all ${failed.length} retries paid`,
    );
  }

  it("fast shutdown: in-flight payments fail with 503 database_unavailable, nothing half-made, the service recovers by itself", async function () {
    await restartUnderLoad("fast");
  });

  it("crash (immediate shutdown, WAL recovery): the same", async function () {
    await restartUnderLoad("immediate");
  });
});
