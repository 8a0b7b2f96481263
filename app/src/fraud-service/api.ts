/** The POST /v1/score contract, shared by fraud-service and its client in payment-service. */
import { z } from "zod";
import { CUSTOMER_TIERS, FRAUD_DECISIONS } from "../tracing/conventions";

const userId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");
const country = z.string().regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 code");

export const scoreRequestSchema = z.strictObject({
  transaction_id: z.uuid(),
  sender_id: userId,
  receiver_id: userId,
  amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  currency: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code"),
  payment_method_type: z.string().regex(/^[a-z_]{1,32}$/),
  customer_tier: z.enum(CUSTOMER_TIERS).optional(),
  sender_country: country.optional(),
  receiver_country: country.optional(),
  device: z.strictObject({ id: z.string().min(1).max(128), fingerprint: z.string().min(1).max(512) }).optional(),
});
export type ScoreRequest = z.infer<typeof scoreRequestSchema>;

export const scoreResponseSchema = z.object({
  decision: z.enum(FRAUD_DECISIONS),
  risk_score: z.number().min(0).max(100),
  risk_factors: z.array(z.string()),
  confidence: z.number().min(0).max(1),
  degraded: z.boolean(),
  model_version: z.string(),
});
export type ScoreResponse = z.infer<typeof scoreResponseSchema>;
