/**
 * The risk model: three component scores (0-100), a weighted overall score, the risk
 * factors and the decision. Pure functions, so the thresholds can be read and tested.
 */
import type { CustomerTier, FraudDecision } from "../tracing/conventions";

export const MODEL_VERSION = "2.1.0";

/** A component score above this is a risk factor. */
export const FACTOR_THRESHOLD = 70;
export const REVIEW_AT = 40;
export const BLOCK_AT = 70;

/** Payments per velocity window that are still ordinary for a tier. */
export const ORDINARY_PAYMENTS_PER_WINDOW: Readonly<Record<CustomerTier, number>> = {
  standard: 5,
  premium: 20,
  enterprise: 100,
};

/** Minor units above which a single payment is unusual for a tier. */
export const UNUSUAL_AMOUNT: Readonly<Record<CustomerTier, number>> = {
  standard: 500_000,
  premium: 2_500_000,
  enterprise: 25_000_000,
};

/** Completed payments from the same sender within the window plus this one; 75 at the tier's ordinary count. */
export function velocityScore(paymentsInWindow: number, tier: CustomerTier): number {
  return clamp(Math.round((paymentsInWindow / ORDINARY_PAYMENTS_PER_WINDOW[tier]) * 75));
}

export type DeviceHistory = "absent" | "known" | "new";

export function deviceScore(device: DeviceHistory, paymentMethodType: string): number {
  if (device === "known") return 0;
  if (device === "absent") return 30;
  // An unseen device paying by card is the classic card-not-present pattern.
  return paymentMethodType === "card" ? 75 : 40;
}

export function amountScore(amount: number, tier: CustomerTier): number {
  const ratio = amount / UNUSUAL_AMOUNT[tier];
  if (ratio <= 0.02) return 5;
  if (ratio <= 0.2) return 25;
  if (ratio <= 0.6) return 50;
  if (ratio <= 1) return 70;
  return 95;
}

export interface ComponentScores {
  readonly velocity: number;
  readonly device: number;
  readonly amount: number;
}

export function overallScore({ velocity, device, amount }: ComponentScores): number {
  return Math.round((0.45 * velocity + 0.15 * device + 0.4 * amount) * 100) / 100;
}

export function riskFactors({ velocity, device, amount }: ComponentScores): string[] {
  const factors: string[] = [];
  if (velocity > FACTOR_THRESHOLD) factors.push("high_velocity");
  if (device > FACTOR_THRESHOLD) factors.push("suspicious_device");
  if (amount > FACTOR_THRESHOLD) factors.push("unusual_amount");
  return factors;
}

export interface Decision {
  readonly decision: FraudDecision;
  /** How far the score sits from the nearest threshold: 0.5 on it, up to 1. */
  readonly confidence: number;
}

/**
 * Block at a high score or two independent risk factors; review at a medium score, one
 * factor, or without velocity data (cache down): nothing is allowed outright blind.
 */
export function decide(score: number, factors: readonly string[], degraded: boolean): Decision {
  const distance = Math.min(Math.abs(score - REVIEW_AT), Math.abs(score - BLOCK_AT));
  const confidence = degraded ? 0.5 : Math.round(Math.min(1, 0.5 + distance / 60) * 100) / 100;
  if (score >= BLOCK_AT || factors.length >= 2) return { decision: "block", confidence };
  if (score >= REVIEW_AT || factors.length === 1 || degraded) return { decision: "review", confidence };
  return { decision: "allow", confidence };
}

function clamp(score: number): number {
  return Math.max(0, Math.min(100, score));
}
