import type { CustomerTier } from "../tracing/conventions";
import { passesLuhn } from "../tracing/redaction";

/** Largest single payment per customer tier, in minor units of any currency. */
export const TIER_LIMITS: Readonly<Record<CustomerTier, number>> = {
  standard: 1_000_000,
  premium: 5_000_000,
  enterprise: 50_000_000,
};

/** A card passes when its number is Luhn-valid and it has not expired (MM/YY, end of month). */
export function isCardUsable(card: { number: string; expiry: string } | undefined, now: Date): boolean {
  if (!card || !passesLuhn(card.number)) return false;
  const [month, year] = card.expiry.split("/").map(Number);
  const firstDayAfterExpiry = Date.UTC(2000 + year, month, 1);
  return now.getTime() < firstDayAfterExpiry;
}
