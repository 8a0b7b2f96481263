/** The ledger statements payment-service runs. Every one is parameterised. */
import type { Pool, PoolClient } from "pg";
import { dbQuery, dbTransaction } from "../ledger/db";
import { FAILURE_REASONS, type CustomerTier } from "../tracing/conventions";
import { PaymentDeclined, type PaymentOutcome } from "./outcomes";

const CHECK_VIOLATION = "23514";

export interface StoredTransaction {
  readonly id: string;
  readonly requestHash: string;
  readonly status: "pending" | "completed" | "declined";
  readonly outcome: PaymentOutcome;
}

interface TransactionRow {
  id: string;
  request_hash: string;
  status: StoredTransaction["status"];
  response_status: number;
  response_body: Record<string, unknown>;
}

export async function findTransaction(pool: Pool, idempotencyKey: string): Promise<StoredTransaction | undefined> {
  const { rows } = await dbQuery<TransactionRow>(
    pool,
    "find_transaction",
    `SELECT id, request_hash, status, response_status, response_body
       FROM transactions WHERE idempotency_key = $1`,
    [idempotencyKey],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    requestHash: row.request_hash,
    status: row.status,
    outcome: { status: row.response_status, body: row.response_body },
  };
}

export interface Wallet {
  readonly userId: string;
  /** Minor units; BIGINT, hence bigint. */
  readonly balance: bigint;
  readonly customerTier: CustomerTier;
  readonly country: string;
}

export async function loadWallets(
  pool: Pool,
  senderId: string,
  receiverId: string,
  currency: string,
): Promise<{ sender?: Wallet; receiver?: Wallet }> {
  const { rows } = await dbQuery<{ user_id: string; balance: string; customer_tier: CustomerTier; country: string }>(
    pool,
    "load_wallets",
    `SELECT user_id, balance, customer_tier, country
       FROM wallets WHERE currency = $1 AND user_id = ANY($2::text[])`,
    [currency, [senderId, receiverId]],
  );
  const wallets = new Map(
    rows.map((r) => [
      r.user_id,
      { userId: r.user_id, balance: BigInt(r.balance), customerTier: r.customer_tier, country: r.country.trim() },
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
     ON CONFLICT (idempotency_key) DO NOTHING`,
    [
      tx.id,
      tx.idempotencyKey,
      tx.requestHash,
      tx.senderId,
      tx.receiverId,
      tx.amount,
      tx.currency,
      tx.paymentMethodType,
      reason,
      outcome.status,
      JSON.stringify(outcome.body),
    ],
  );
  return rowCount === 1;
}

/**
 * Moves the money in one short transaction: claim the idempotency key, lock both wallets
 * (always in user_id order, so two opposite transfers cannot deadlock), check the balance
 * under the lock, debit, credit, write the two ledger entries, mark the transaction
 * completed with the answer a retry will get. Any failure rolls all of it back.
 *
 * Resolves "conflict", having changed nothing, when a concurrent request with the same key
 * committed first. Throws PaymentDeclined(insufficient_funds) when the balance dropped since
 * validation.
 */
export function transferFunds(
  pool: Pool,
  tx: TransactionRecord,
  outcome: PaymentOutcome,
): Promise<"completed" | "conflict"> {
  return dbTransaction(pool, "transfer_funds", async (client) => {
    if (!(await claimKey(client, tx))) return "conflict";

    const { rows } = await client.query<{ user_id: string; balance: string }>(
      `SELECT user_id, balance FROM wallets
        WHERE currency = $1 AND user_id = ANY($2::text[])
        ORDER BY user_id
          FOR UPDATE`,
      [tx.currency, [tx.senderId, tx.receiverId]],
    );
    const sender = rows.find((r) => r.user_id === tx.senderId);
    if (rows.length !== 2 || !sender) throw new Error("wallet disappeared during transfer");
    if (BigInt(sender.balance) < BigInt(tx.amount)) {
      throw new PaymentDeclined(FAILURE_REASONS.insufficientFunds, "balance too low for this payment");
    }

    try {
      await client.query(
        `UPDATE wallets SET balance = balance - $3, updated_at = now() WHERE user_id = $1 AND currency = $2`,
        [tx.senderId, tx.currency, tx.amount],
      );
    } catch (error) {
      // The CHECK (balance >= 0) backstop.
      if ((error as { code?: string }).code === CHECK_VIOLATION) {
        throw new PaymentDeclined(FAILURE_REASONS.insufficientFunds, "balance too low for this payment");
      }
      throw error;
    }
    await client.query(
      `UPDATE wallets SET balance = balance + $3, updated_at = now() WHERE user_id = $1 AND currency = $2`,
      [tx.receiverId, tx.currency, tx.amount],
    );
    await client.query(
      `INSERT INTO ledger_entries (transaction_id, user_id, currency, direction, amount)
       VALUES ($1, $2, $4, 'debit', $5), ($1, $3, $4, 'credit', $5)`,
      [tx.id, tx.senderId, tx.receiverId, tx.currency, tx.amount],
    );
    await client.query(
      `UPDATE transactions
          SET status = 'completed', response_status = $2, response_body = $3, completed_at = now(), updated_at = now()
        WHERE id = $1`,
      [tx.id, outcome.status, JSON.stringify(outcome.body)],
    );
    return "completed";
  });
}

/**
 * Inserts the pending transaction row. With a concurrent request on the same key, the insert
 * waits for the other transaction to end, then inserts nothing: false.
 */
async function claimKey(client: PoolClient, tx: TransactionRecord): Promise<boolean> {
  const { rowCount } = await client.query(
    `INSERT INTO transactions (id, idempotency_key, request_hash, sender_id, receiver_id, amount, currency,
                               payment_method_type, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')
     ON CONFLICT (idempotency_key) DO NOTHING`,
    [tx.id, tx.idempotencyKey, tx.requestHash, tx.senderId, tx.receiverId, tx.amount, tx.currency, tx.paymentMethodType],
  );
  return rowCount === 1;
}

export async function enqueueEvent(pool: Pool, aggregateId: string, eventType: string, payload: object): Promise<void> {
  await dbQuery(
    pool,
    "enqueue_outbox_event",
    `INSERT INTO outbox (aggregate_id, event_type, payload) VALUES ($1, $2, $3)
     ON CONFLICT (aggregate_id, event_type) DO NOTHING`,
    [aggregateId, eventType, JSON.stringify(payload)],
  );
}
