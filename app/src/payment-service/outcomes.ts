import { FAILURE_REASONS, type FailureReason } from "../tracing/conventions";

/** What the API answers: status and JSON body, stored as is for idempotent replay. */
export interface PaymentOutcome {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** HTTP status of each decline and failure. */
export const FAILURE_STATUS: Readonly<Record<FailureReason, number>> = {
  [FAILURE_REASONS.insufficientFunds]: 402,
  [FAILURE_REASONS.fraudBlocked]: 402,
  [FAILURE_REASONS.fraudReview]: 402,
  [FAILURE_REASONS.limitExceeded]: 422,
  [FAILURE_REASONS.invalidPaymentMethod]: 422,
  [FAILURE_REASONS.senderNotFound]: 422,
  [FAILURE_REASONS.receiverNotFound]: 422,
  [FAILURE_REASONS.receiverBalanceLimit]: 422,
  [FAILURE_REASONS.fraudUnavailable]: 503,
  [FAILURE_REASONS.databaseUnavailable]: 503,
  [FAILURE_REASONS.processingError]: 500,
  [FAILURE_REASONS.idempotencyKeyReused]: 422,
};

export interface DeclineOptions {
  /**
   * The decline rests on a transient fault, not on the request (fraud-service held or
   * blocked it having scored without the sender's history), so a retry may decide otherwise: it is
   * answered with `retryable: true` and not stored. Default false: stored for replay.
   */
  readonly retryable?: boolean;
}

/**
 * A business decline: the request was understood and refused. The step that declines
 * throws it (so its span records error.type/message); the flow turns it into a 4xx answer
 * that is stored for replay, unless it is retryable.
 */
export class PaymentDeclined extends Error {
  override readonly name = "PaymentDeclined";
  readonly retryable: boolean;
  constructor(
    readonly reason: FailureReason,
    message: string,
    options: DeclineOptions = {},
  ) {
    super(message);
    this.retryable = options.retryable ?? false;
  }
}

/** fraud-service did not answer in time or answered nonsense; payments fail closed. */
export class FraudServiceUnavailable extends Error {
  override readonly name = "FraudServiceUnavailable";
}

/** A retryable decline keeps its status and code (clients handle those) and says it may be retried. */
export function declineOutcome(declined: PaymentDeclined, transactionId: string): PaymentOutcome {
  const body = { error: declined.reason, message: declined.message, transaction_id: transactionId };
  return { status: FAILURE_STATUS[declined.reason], body: declined.retryable ? { ...body, retryable: true } : body };
}

/** 5xx answers are not stored: the client may retry them with the same key. */
export function failureOutcome(reason: FailureReason, message: string): PaymentOutcome {
  return { status: FAILURE_STATUS[reason], body: { error: reason, message } };
}
