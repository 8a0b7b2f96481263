/**
 * POST /v1/payments as the seed describes it: validate → score fraud → process, each step
 * one measured span under payment.process_payment. Post-processing (receipts, the fraud
 * history) starts from the `payment.completed` outbox event, which the transfer writes in
 * its own transaction; the outbox relay publishes it to RabbitMQ outside the request
 * (src/post-processing/).
 */
import type { Pool } from "pg";
import { isDatabaseUnavailable } from "../ledger/db";
import { annotateCustomer, annotatePayment, annotateRootTier, annotateUser } from "../tracing/annotators";
import {
  DETAIL_TAGS,
  EVENT_TYPES,
  FAILURE_REASONS,
  SPANS,
  TAGS,
  type CustomerTier,
  type FailureReason,
} from "../tracing/conventions";
import type { Logger } from "../tracing/logger";
import { annotatePerformance, elapsedMs, measuringPayment, recordFraudCall, startTimer } from "../tracing/performance";
import { injectContext } from "../tracing/propagation";
import { setTags, traced } from "../tracing/spans";
import type { PaymentCompletedPayload } from "../post-processing/events";
import type { Span } from "../tracing/tracer";
import type { ScoreResponse } from "../fraud-service/api";
import type { FraudClient } from "./fraud-client";
import {
  FraudServiceUnavailable,
  PaymentDeclined,
  declineOutcome,
  failureOutcome,
  type PaymentOutcome,
} from "./outcomes";
import { isCardUsable, TIER_LIMITS } from "./payment-method";
import { requestHash, type PaymentRequest } from "./request";
import { newTransactionId } from "./transaction-id";
import {
  findTransaction,
  loadWallets,
  recordDecline,
  releaseExpiredKey,
  transferFunds,
  type StoredTransaction,
  type TransactionRecord,
  type UserProfile,
} from "./store";

export interface PaymentDeps {
  readonly pool: Pool;
  readonly fraud: FraudClient;
  readonly logger: Logger;
  /** How long an Idempotency-Key answers with its first outcome; past it the key may be used again. */
  readonly idempotencyWindowSeconds: number;
}

/**
 * Returns the answer for a processed, declined or replayed payment. Throws on system
 * failures (database, fraud-service), which mark payment.process_payment as an error;
 * `failureReasonOf` names them.
 */
export function processPayment(
  deps: PaymentDeps,
  request: PaymentRequest,
  idempotencyKey: string,
  root: Span | null,
): Promise<PaymentOutcome> {
  const tx: TransactionRecord = {
    id: newTransactionId(),
    idempotencyKey,
    requestHash: requestHash(request),
    senderId: request.sender_id,
    receiverId: request.receiver_id,
    amount: request.amount,
    currency: request.currency,
    paymentMethodType: request.payment_method_type,
  };

  return traced(SPANS.processPayment, (span) =>
    measuringPayment(async (performance) => {
      try {
        return await paymentSteps(deps, request, tx, idempotencyKey, root, span);
      } finally {
        annotatePerformance(span, performance);
      }
    }),
  );
}

async function paymentSteps(
  deps: PaymentDeps,
  request: PaymentRequest,
  tx: TransactionRecord,
  idempotencyKey: string,
  root: Span | null,
  span: Span,
): Promise<PaymentOutcome> {
  annotatePayment(span, { ...tx, transactionId: tx.id });
  // The client's tier is a hint for sampling until the wallet says otherwise.
  if (request.customer_tier) annotateRootTier(root, request.customer_tier);

  try {
    const previous = await findTransaction(deps.pool, tx.senderId, idempotencyKey, deps.idempotencyWindowSeconds);
    if (previous && !previous.expired) return replay(span, previous, tx.requestHash);
    // Past its window the key is free again: release it from the old transaction (kept).
    if (previous) await releaseExpiredKey(deps.pool, previous.id, deps.idempotencyWindowSeconds);

    const customer = await validate(deps, request, tx, (known) => {
      // Known before the fraud call, where head-based sampling decides.
      annotateCustomer(span, known);
      if (known.profile) annotateUser(span, known.profile);
      annotateRootTier(root, known.customerTier);
    });
    setTags(span, { [DETAIL_TAGS.validationResult]: true });

    await scoreFraud(deps, request, tx, customer, span);
    const outcome = await transfer(deps, tx, request);
    // A concurrent request with the same key moved the money: answer what it answered.
    if (!outcome) return replayWinner(deps, span, tx);
    setTags(span, { [TAGS.finalStatus]: "completed" });
    return outcome;
  } catch (error) {
    if (error instanceof PaymentDeclined) return decline(deps, span, tx, error);
    setTags(span, { [TAGS.failureReason]: failureReasonOf(error), [TAGS.finalStatus]: "failed" });
    throw error;
  }
}

export function failureReasonOf(error: unknown): FailureReason {
  if (error instanceof FraudServiceUnavailable) return FAILURE_REASONS.fraudUnavailable;
  if (isDatabaseUnavailable(error)) return FAILURE_REASONS.databaseUnavailable;
  return FAILURE_REASONS.processingError;
}

interface Customer {
  readonly customerTier: CustomerTier;
  readonly senderCountry: string;
  readonly receiverCountry: string;
  /** The sender's profile in the ledger, if any. */
  readonly profile?: UserProfile;
}

/**
 * payment.validation: wallets exist, balance, per-tier limit, payment method. Reports the
 * customer to `onCustomer` as soon as the wallets are read, declined or not.
 */
function validate(
  deps: PaymentDeps,
  request: PaymentRequest,
  tx: TransactionRecord,
  onCustomer: (customer: Customer) => void,
): Promise<Customer> {
  return traced(
    SPANS.validation,
    async (span) => {
      const { sender, receiver } = await loadWallets(deps.pool, tx.senderId, tx.receiverId, tx.currency);
      if (!sender) throw new PaymentDeclined(FAILURE_REASONS.senderNotFound, `sender has no ${tx.currency} wallet`);
      if (!receiver) {
        throw new PaymentDeclined(FAILURE_REASONS.receiverNotFound, `receiver has no ${tx.currency} wallet`);
      }
      // The tier is the wallet's; countries stated in the request (where the payment is made
      // from and to) win over the wallets' home countries.
      const customer: Customer = {
        customerTier: sender.customerTier,
        senderCountry: request.sender_country ?? sender.country,
        receiverCountry: request.receiver_country ?? receiver.country,
        profile: sender.profile,
      };
      onCustomer(customer);
      const sufficient = sender.balance >= BigInt(tx.amount);
      const limit = TIER_LIMITS[sender.customerTier];
      const withinLimits = tx.amount <= limit;
      const methodValid = request.payment_method_type !== "card" || isCardUsable(request.card, new Date());
      setTags(span, {
        [DETAIL_TAGS.balanceSufficient]: sufficient,
        [DETAIL_TAGS.withinLimits]: withinLimits,
        [DETAIL_TAGS.paymentMethodValid]: methodValid,
      });
      if (!sufficient) throw new PaymentDeclined(FAILURE_REASONS.insufficientFunds, "balance too low for this payment");
      if (!withinLimits) {
        throw new PaymentDeclined(
          FAILURE_REASONS.limitExceeded,
          `amount above the ${sender.customerTier} limit of ${limit} minor units`,
        );
      }
      if (!methodValid) {
        throw new PaymentDeclined(FAILURE_REASONS.invalidPaymentMethod, "card number or expiry not valid");
      }
      return customer;
    },
    { "validation.amount": tx.amount, "validation.currency": tx.currency, "validation.sender_id": tx.senderId },
  );
}

/**
 * fraud.detection: the fraud-service call. Blocked and held payments are declined; a
 * decline from a degraded score (no sender history: Redis down or slow, so every device
 * looks new) is retryable, so a transient fault does not decline the request for good.
 */
function scoreFraud(
  deps: PaymentDeps,
  request: PaymentRequest,
  tx: TransactionRecord,
  customer: Customer,
  payment: Span,
): Promise<ScoreResponse> {
  return traced(
    SPANS.fraudDetection,
    async (span) => {
      const started = startTimer();
      const score = await measured(started, deps.fraud.score({
        transaction_id: tx.id,
        sender_id: tx.senderId,
        receiver_id: tx.receiverId,
        amount: tx.amount,
        currency: tx.currency,
        payment_method_type: tx.paymentMethodType,
        customer_tier: customer.customerTier,
        sender_country: customer.senderCountry,
        receiver_country: customer.receiverCountry,
        device: request.device,
      }));
      setTags(span, {
        [DETAIL_TAGS.fraudRiskScore]: score.risk_score,
        [TAGS.fraudRiskFactors]: score.risk_factors,
        [TAGS.fraudDecision]: score.decision,
        [TAGS.fraudDegraded]: score.degraded,
      });
      setTags(payment, { [TAGS.fraudRiskScore]: score.risk_score, [TAGS.fraudAction]: score.decision });
      if (score.decision === "block") {
        throw new PaymentDeclined(FAILURE_REASONS.fraudBlocked, "payment blocked by fraud screening", {
          retryable: score.degraded,
        });
      }
      if (score.decision === "review") {
        throw new PaymentDeclined(FAILURE_REASONS.fraudReview, "payment held for fraud review", {
          retryable: score.degraded,
        });
      }
      return score;
    },
    { "fraud.transaction_id": tx.id, "fraud.amount": tx.amount, "fraud.payment_method": tx.paymentMethodType },
  );
}

/** Awaits the fraud call and adds its wall time (answered or not) to the payment's counters. */
async function measured<T>(started: bigint, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } finally {
    recordFraudCall(elapsedMs(started));
  }
}

/**
 * payment.processing: the transfer and its `payment.completed` outbox event, in one
 * database transaction. The event carries this span's trace context, so the relay and the
 * consumers continue the payment's trace, and the device, from which the fraud history
 * learns once the payment is made. Undefined when a concurrent request with the same
 * Idempotency-Key got there first.
 */
function transfer(deps: PaymentDeps, tx: TransactionRecord, request: PaymentRequest): Promise<PaymentOutcome | undefined> {
  return traced(
    SPANS.processing,
    async (span) => {
      const outcome: PaymentOutcome = {
        status: 201,
        body: {
          transaction_id: tx.id,
          status: "completed",
          amount: tx.amount,
          currency: tx.currency,
          sender_id: tx.senderId,
          receiver_id: tx.receiverId,
        },
      };
      let result: "completed" | "conflict";
      try {
        result = await transferFunds(deps.pool, tx, outcome, {
          type: EVENT_TYPES.paymentCompleted,
          payload: {
            transaction_id: tx.id,
            sender_id: tx.senderId,
            receiver_id: tx.receiverId,
            amount: tx.amount,
            currency: tx.currency,
            ...(request.device ? { device: request.device } : {}),
          } satisfies PaymentCompletedPayload,
          traceContext: injectContext(span),
        });
      } catch (error) {
        const reason = error instanceof PaymentDeclined ? error.reason : failureReasonOf(error);
        setTags(span, { [TAGS.failureReason]: reason, "processing.rolled_back": true });
        throw error;
      }
      if (result === "conflict") {
        setTags(span, { "processing.final_status": "superseded" });
        return undefined;
      }
      setTags(span, { "processing.final_status": "completed" });
      return outcome;
    },
    { "processing.transaction_id": tx.id },
  );
}

/**
 * Answers a decline and stores it against the key, so a retry replays it. A retryable one is
 * only answered: stored, it would replay a transient fault's answer for good.
 */
async function decline(
  deps: PaymentDeps,
  span: Span,
  tx: TransactionRecord,
  declined: PaymentDeclined,
): Promise<PaymentOutcome> {
  setTags(span, {
    [TAGS.failureReason]: declined.reason,
    [TAGS.finalStatus]: "declined",
    [TAGS.retryable]: declined.retryable ? true : undefined,
  });
  const outcome = declineOutcome(declined, tx.id);
  if (declined.retryable) {
    deps.logger.info({ transaction_id: tx.id, reason: declined.reason, retryable: true }, "payment declined");
    return outcome;
  }
  let recorded: boolean;
  try {
    recorded = await recordDecline(deps.pool, tx, declined.reason, outcome);
  } catch (error) {
    setTags(span, { [TAGS.failureReason]: failureReasonOf(error), [TAGS.finalStatus]: "failed" });
    throw error;
  }
  if (!recorded) return replayWinner(deps, span, tx);
  deps.logger.info({ transaction_id: tx.id, reason: declined.reason }, "payment declined");
  return outcome;
}

async function replayWinner(deps: PaymentDeps, span: Span, tx: TransactionRecord): Promise<PaymentOutcome> {
  const winner = await findTransaction(deps.pool, tx.senderId, tx.idempotencyKey, deps.idempotencyWindowSeconds);
  if (!winner) throw new Error("idempotency conflict without a committed transaction");
  return replay(span, winner, tx.requestHash);
}

function replay(span: Span, previous: StoredTransaction, hash: string): PaymentOutcome {
  setTags(span, { [DETAIL_TAGS.idempotentReplay]: true, [TAGS.transactionId]: previous.id });
  if (previous.requestHash !== hash) {
    const reason = FAILURE_REASONS.idempotencyKeyReused;
    setTags(span, { [TAGS.failureReason]: reason, [TAGS.finalStatus]: "rejected" });
    return failureOutcome(reason, "this Idempotency-Key was used for a different request");
  }
  setTags(span, { [TAGS.finalStatus]: previous.status });
  return previous.outcome;
}
