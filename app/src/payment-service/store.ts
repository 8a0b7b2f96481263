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
     ON CONFLICT (idempotency_key) DO NOTHING`,
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
