/**
 * The events the outbox carries and the messages the relay makes of them: one JSON body
 * per event, the event id as the AMQP message id, the event type as the routing key.
 * Consumers parse a message here and dead-letter whatever does not parse.
 */
import { z } from "zod";
import { EVENT_TYPES } from "../tracing/conventions";

/**
 * First key of the relay's per-sender advisory locks (the second is `hashtext` of the sender
 * id): one relay at a time holds a sender's events, so they reach the broker in commit order.
 */
export const SENDER_LOCK_SPACE = 4_271_012;

const userId = z.string().min(1).max(128);

export const paymentCompletedPayloadSchema = z.object({
  transaction_id: z.uuid(),
  sender_id: userId,
  receiver_id: userId,
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  /** The device the sender paid from, when the request named one. */
  device: z.object({ id: z.string().min(1).max(128), fingerprint: z.string().min(1).max(512) }).optional(),
});
export type PaymentCompletedPayload = z.infer<typeof paymentCompletedPayloadSchema>;

export const paymentCompletedSchema = z.object({
  /** The outbox row id, unique for good: what consumers deduplicate on. */
  id: z.string().regex(/^\d+$/, "must be the outbox id"),
  type: z.literal(EVENT_TYPES.paymentCompleted),
  /** When the payment committed (the outbox row's created_at), ISO 8601. */
  occurred_at: z.iso.datetime({ offset: true }),
  payload: paymentCompletedPayloadSchema,
});
export type PaymentCompletedEvent = z.infer<typeof paymentCompletedSchema>;

/** An outbox row as the relay reads it. */
export interface OutboxRow {
  readonly id: string;
  readonly aggregate_id: string;
  readonly event_type: string;
  readonly payload: Record<string, unknown>;
  readonly trace_context: Record<string, string> | null;
  readonly created_at: Date;
}

/** The message body of an outbox row. */
export function messageBody(row: OutboxRow): Buffer {
  return Buffer.from(
    JSON.stringify({ id: row.id, type: row.event_type, occurred_at: row.created_at.toISOString(), payload: row.payload }),
  );
}

export type ParsedEvent =
  | { readonly ok: true; readonly event: PaymentCompletedEvent }
  | { readonly ok: false; readonly reason: string };

/** The event a message body holds, or why it is malformed (the reason goes with it to the dead-letter queue). */
export function parseEvent(body: Buffer): ParsedEvent {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed: body is not JSON" };
  }
  const result = paymentCompletedSchema.safeParse(json);
  if (result.success) return { ok: true, event: result.data };
  const issues = result.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`);
  return { ok: false, reason: `malformed: ${issues.join("; ")}` };
}
