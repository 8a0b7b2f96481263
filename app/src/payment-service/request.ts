/** The body and headers of POST /v1/payments. */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CUSTOMER_TIERS } from "../tracing/conventions";

export const CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "SEK", "NOK", "DKK"] as const;
export const PAYMENT_METHOD_TYPES = ["wallet", "card", "bank_account"] as const;

/** Upper bound on any single payment, in minor units, before per-tier limits apply. */
export const MAX_AMOUNT = 100_000_000;

const userId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");
const country = z.string().regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 code");

const card = z.strictObject({
  number: z.string().regex(/^\d{12,19}$/, "must be 12-19 digits"),
  cvv: z.string().regex(/^\d{3,4}$/, "must be 3 or 4 digits"),
  expiry: z.string().regex(/^(0[1-9]|1[0-2])\/\d{2}$/, "must be MM/YY"),
});

const device = z.strictObject({
  id: z.string().min(1).max(128),
  fingerprint: z.string().min(1).max(512),
});

export const paymentRequestSchema = z
  .strictObject({
    sender_id: userId,
    receiver_id: userId,
    amount: z.number().int().positive().max(MAX_AMOUNT),
    currency: z.enum(CURRENCIES),
    payment_method_type: z.enum(PAYMENT_METHOD_TYPES),
    card: card.optional(),
    device: device.optional(),
    customer_tier: z.enum(CUSTOMER_TIERS).optional(),
    sender_country: country.optional(),
    receiver_country: country.optional(),
  })
  .refine((p) => p.sender_id !== p.receiver_id, { path: ["receiver_id"], message: "must differ from sender_id" })
  .refine((p) => p.payment_method_type !== "card" || p.card !== undefined, {
    path: ["card"],
    message: "is required when payment_method_type is card",
  });

export type PaymentRequest = z.infer<typeof paymentRequestSchema>;

export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{8,255}$/, "must be 8-255 printable ASCII characters without spaces");

/**
 * Identifies a request for idempotent replay. Card data enters only as last four digits
 * and expiry: the hash is stored, and a PAN or CVV must not be, even hashed.
 */
export function requestHash(request: PaymentRequest): string {
  const { card: cardData, ...rest } = request;
  const view = cardData ? { ...rest, card: { last4: cardData.number.slice(-4), expiry: cardData.expiry } } : rest;
  return createHash("sha256").update(JSON.stringify(view)).digest("hex");
}
