/** The ledger statements payment-service runs. Every one is parameterised. */
import type { Pool } from "pg";
import { dbQuery } from "../ledger/db";
import { FAILURE_REASONS, type CustomerTier } from "../tracing/conventions";
import { PaymentDeclined, type PaymentOutcome } from "./outcomes";

const CHECK_VIOLATION = "23514";

export interface StoredTransaction {
  readonly id: string;
  readonly requestHash: string;
  readonly status: "pending" | "completed" | "declined";
  readonly outcome: PaymentOutcome;
  /** Made longer ago than the idempotency window: its key may be used again. */
  readonly expired: boolean;
}

interface TransactionRow {
  id: string;
  request_hash: string;
  status: StoredTransaction["status"];
  response_status: number;
  response_body: Record<string, unknown>;
  expired: boolean;
}

/** The transaction `senderId` made with `idempotencyKey`: keys belong to their sender (migrations/007). */
export async function findTransaction(
  pool: Pool,
  senderId: string,
  idempotencyKey: string,
  windowSeconds: number,
): Promise<StoredTransaction | undefined> {
  const { rows } = await dbQuery<TransactionRow>(
    pool,
    "find_transaction",
    `SELECT id, request_hash, status, response_status, response_body,
            created_at < now() - make_interval(secs => $3) AS expired
       FROM transactions WHERE sender_id = $1 AND idempotency_key = $2`,
    [senderId, idempotencyKey, windowSeconds],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    requestHash: row.request_hash,
    status: row.status,
    outcome: { status: row.response_status, body: row.response_body },
    expired: row.expired,
  };
}

/**
 * Frees the key of a transaction older than the window, so its sender may use the key
 * again (migrations/007: a function that runs as the ledger's owner; the service has no UPDATE).
 */
export async function releaseExpiredKey(pool: Pool, transactionId: string, windowSeconds: number): Promise<void> {
  await dbQuery(pool, "release_idempotency_key", `SELECT release_expired_idempotency_key($1, $2)`, [transactionId, windowSeconds]);
}

/**
 * Releases up to `batchSize` keys older than the window, oldest first; resolves with how
 * many. Rows another pruner (another replica) holds are skipped, not waited for, and each
 * batch is its own short statement: no long lock on `transactions`.
 */
export async function pruneExpiredKeys(pool: Pool, windowSeconds: number, batchSize: number): Promise<number> {
  const { rows } = await dbQuery<{ released: number }>(
    pool,
    "prune_idempotency_keys",
    `SELECT prune_expired_idempotency_keys($1, $2) AS released`,
    [windowSeconds, batchSize],
  );
  return rows[0]?.released ?? 0;
}

export interface UserProfile {
  readonly segment: string;
  readonly kycLevel: string;
  /** Whole days since the user became a customer. */
  readonly tenureDays: number;
}

export interface Wallet {
  readonly userId: string;
  /** Minor units; BIGINT, hence bigint. */
  readonly balance: bigint;
  readonly customerTier: CustomerTier;
  readonly country: string;
  /** The owner's profile (migrations/008), when the ledger has one. */
  readonly profile?: UserProfile;
}

interface WalletRow {
  user_id: string;
  balance: string;
  customer_tier: CustomerTier;
  country: string;
  segment: string | null;
  kyc_level: string | null;
  tenure_days: number | null;
}

/** Both wallets in `currency`, with their owners' profiles, in one statement. */
export async function loadWallets(
  pool: Pool,
  senderId: string,
  receiverId: string,
  currency: string,
): Promise<{ sender?: Wallet; receiver?: Wallet }> {
  const { rows } = await dbQuery<WalletRow>(
    pool,
    "load_wallets",
    `SELECT w.user_id, w.balance, w.customer_tier, w.country, p.segment, p.kyc_level,
            floor(extract(epoch FROM now() - p.customer_since) / 86400)::int AS tenure_days
       FROM wallets w LEFT JOIN user_profiles p ON p.user_id = w.user_id
      WHERE w.currency = $1 AND w.user_id = ANY($2::text[])`,
    [currency, [senderId, receiverId]],
  );
  const wallets = new Map(
    rows.map((r) => [
      r.user_id,
      {
        userId: r.user_id,
        balance: BigInt(r.balance),
        customerTier: r.customer_tier,
        country: r.country.trim(),
        profile:
          r.segment !== null && r.kyc_level !== null && r.tenure_days !== null
            ? { segment: r.segment, kycLevel: r.kyc_level, tenureDays: Math.max(0, r.tenure_days) }
            : undefined,
      },
    ]),
  );
  return { sender: wallets.get(senderId), receiver: wallets.get(receiverId) };
}

export interface TransactionRecord {
  readonly id: string;
  readonly idempotencyKey: string;
  readonly requestHash: string;
  readonly senderId: string;
  readonly receiverId: string;
  readonly amount: number;
  readonly currency: string;
  readonly paymentMethodType: string;
}

/** The request's columns of a `transactions` row, in table order: $1 … $8 of both writes below. */
function transactionColumns(tx: TransactionRecord): unknown[] {
  return [
    tx.id,
    tx.idempotencyKey,
    tx.requestHash,
    tx.senderId,
    tx.receiverId,
    tx.amount,
    tx.currency,
    tx.paymentMethodType,
  ];
}

/**
 * Records a declined request so a retry with its key gets the same answer. Returns false
 * when another request with the key got there first.
 */
export async function recordDecline(
  pool: Pool,
  tx: TransactionRecord,
  reason: string,
  outcome: PaymentOutcome,
): Promise<boolean> {
  const { rowCount } = await dbQuery(
    pool,
    "record_decline",
    `INSERT INTO transactions (id, idempotency_key, request_hash, sender_id, receiver_id, amount, currency,
                               payment_method_type, status, failure_reason, response_status, response_body)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'declined', $9, $10, $11)
     ON CONFLICT (sender_id, idempotency_key) DO NOTHING`,
    [...transactionColumns(tx), reason, outcome.status, JSON.stringify(outcome.body)],
  );
  return rowCount === 1;
}

export interface PaymentEvent {
  readonly type: string;
  readonly payload: object;
  /** The payment's trace context (propagation.ts), stored with the event for the relay and the consumers. */
  readonly traceContext?: Readonly<Record<string, string>>;
}

/**
 * Moves the money: one call of the ledger's `transfer_funds` function
 * (migrations/005_transfer_funds.sql), one round trip and one transaction. It claims the
 * idempotency key, locks both wallets in user_id order, checks the balance under the lock,
 * debits, credits, writes the two ledger entries, marks the transaction completed with the
 * answer a retry will get and writes `event` to the outbox, with its trace context. Any failure rolls all of it back.
 *
 * Resolves "conflict", having changed nothing, when a concurrent request with the same key
 * committed first. Throws PaymentDeclined(insufficient_funds) when the balance dropped since
 * validation.
 */
export async function transferFunds(
  pool: Pool,
  tx: TransactionRecord,
  outcome: PaymentOutcome,
  event: PaymentEvent,
): Promise<"completed" | "conflict"> {
  let rows: Array<{ result: string }>;
  try {
    ({ rows } = await dbQuery<{ result: string }>(
      pool,
      "transfer_funds",
      `SELECT transfer_funds($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) AS result`,
      [
        ...transactionColumns(tx),
        outcome.status,
        JSON.stringify(outcome.body),
        event.type,
        JSON.stringify(event.payload),
        event.traceContext ? JSON.stringify(event.traceContext) : null,
      ],
    ));
  } catch (error) {
    // The balance check under the lock, and the CHECK (balance >= 0) backstop.
    if ((error as { code?: string }).code === CHECK_VIOLATION) {
      throw new PaymentDeclined(FAILURE_REASONS.insufficientFunds, "balance too low for this payment");
    }
    throw error;
  }
  const result = rows[0]?.result;
  if (result !== "completed" && result !== "conflict") throw new Error(`transfer_funds answered ${result}`);
  return result;
}
