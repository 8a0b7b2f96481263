/**
 * What each consumer does with a `payment.completed` event. Each is idempotent on the
 * event: applying it twice changes nothing the second time (resolves false).
 */
import type Redis from "ioredis";
import type { Pool } from "pg";
import { dbQuery } from "../ledger/db";
import { recordCompletedPayment, type HistorySettings } from "../fraud-service/history";
import type { ConsumerName } from "../tracing/conventions";
import type { PaymentCompletedEvent } from "./events";

export type EventHandler = (event: PaymentCompletedEvent) => Promise<boolean>;

/**
 * receipts: one row for the sender and one for the receiver, in one statement; the unique
 * (transaction_id, role) key turns a replay into a no-op.
 */
export function receiptsHandler(pool: Pool): EventHandler {
  return async (event) => {
    const p = event.payload;
    const { rowCount } = await dbQuery(
      pool,
      "insert_receipts",
      `INSERT INTO receipts (event_id, transaction_id, role, user_id, counterparty_id, amount, currency, completed_at)
       VALUES ($1, $2, 'sender', $3, $4, $5, $6, $7), ($1, $2, 'receiver', $4, $3, $5, $6, $7)
       ON CONFLICT (transaction_id, role) DO NOTHING`,
      [event.id, p.transaction_id, p.sender_id, p.receiver_id, p.amount, p.currency, event.occurred_at],
    );
    return (rowCount ?? 0) > 0;
  };
}

/** fraud-history: the sender's velocity and known devices learn from the completed payment. */
export function fraudHistoryHandler(
  redis: Redis,
  settings: HistorySettings & { readonly eventMemorySeconds: number },
): EventHandler {
  return (event) =>
    recordCompletedPayment(redis, settings, {
      eventId: event.id,
      senderId: event.payload.sender_id,
      device: event.payload.device,
      completedAt: Date.parse(event.occurred_at),
    });
}

export type Handlers = Partial<Record<ConsumerName, EventHandler>>;
