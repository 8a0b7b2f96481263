/**
 * Business annotations: the tags that let a trace be searched by what the payment was,
 * not only by how long it took.
 */
import { DETAIL_TAGS, TAGS, type CustomerTier } from "./conventions";
import { setTags } from "./spans";
import type { Span } from "./tracer";

export interface PaymentFacts {
  readonly transactionId: string;
  readonly senderId: string;
  readonly receiverId: string;
  readonly amount: number;
  readonly currency: string;
  readonly paymentMethodType: string;
}

export function annotatePayment(span: Span, payment: PaymentFacts): void {
  setTags(span, {
    [TAGS.transactionId]: payment.transactionId,
    [TAGS.amount]: payment.amount,
    [TAGS.currency]: payment.currency,
    [TAGS.senderId]: payment.senderId,
    [TAGS.receiverId]: payment.receiverId,
    [TAGS.paymentMethod]: payment.paymentMethodType,
    [DETAIL_TAGS.transactionValue]: payment.amount,
    [DETAIL_TAGS.businessCurrency]: payment.currency,
    [DETAIL_TAGS.productCategory]: "p2p_payment",
  });
}

export interface CustomerFacts {
  readonly customerTier: CustomerTier;
  readonly senderCountry?: string;
  readonly receiverCountry?: string;
}

export function annotateCustomer(span: Span, customer: CustomerFacts): void {
  const { senderCountry, receiverCountry } = customer;
  setTags(span, {
    [TAGS.customerTier]: customer.customerTier,
    [DETAIL_TAGS.senderCountry]: senderCountry,
    [DETAIL_TAGS.receiverCountry]: receiverCountry,
    [TAGS.crossBorder]:
      senderCountry !== undefined && receiverCountry !== undefined ? senderCountry !== receiverCountry : undefined,
  });
}

/**
 * Sets the customer tier on the HTTP root span: `payments.tier` for the tier sampling
 * rules, `business.customer_tier` for searching.
 */
export function annotateRootTier(root: Span | null, tier: CustomerTier): void {
  setTags(root, { [TAGS.rootTier]: tier, [TAGS.customerTier]: tier });
}

export interface UserFacts {
  readonly segment: string;
  readonly kycLevel: string;
  readonly tenureDays: number;
}

/** The original design's annotate_user_span: who the paying user is, from what the ledger knows of them. */
export function annotateUser(span: Span, user: UserFacts): void {
  setTags(span, {
    [DETAIL_TAGS.userSegment]: user.segment,
    [DETAIL_TAGS.kycLevel]: user.kycLevel,
    [DETAIL_TAGS.userTenureDays]: user.tenureDays,
  });
}
