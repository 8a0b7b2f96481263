/**
 * The tracing contract shared by the services, their tests and the Pulumi program
 * (monitor queries, sampling rules). Change a name here and every side follows.
 */

export const SERVICES = {
  payment: "payment-service",
  fraud: "fraud-service",
  /** Publishes the outbox to RabbitMQ (src/post-processing/relay-main.ts). */
  relay: "outbox-relay",
  /** The outbox events' consumers: receipts and fraud history (src/post-processing/consumers-main.ts). */
  postProcessing: "post-processing",
} as const;
export type ServiceName = (typeof SERVICES)[keyof typeof SERVICES];

/** DD_SERVICE of the ledger migration Job (the `migrate` entry of the payment-service image). */
export const MIGRATIONS_SERVICE = "ledger-migrations";

/** Business spans, named as in the original tracing design. */
export const SPANS = {
  processPayment: "payment.process_payment",
  validation: "payment.validation",
  processing: "payment.processing",
  fraudDetection: "fraud.detection",
  riskScoring: "fraud.risk_scoring",
  /** Every ledger statement the app runs is wrapped in this measured span. */
  databaseQuery: "database.query",
  /** One per bearer token verified by payment-service (the caller's access token). */
  userAuthentication: "user.authentication",
  /**
   * The payment's work after its commit: the relay's publish of its event (resource
   * `publish <event type>`) and each consumer's handling (resource = the consumer), in the
   * payment's own trace.
   */
  postProcessing: "payment.post_processing",
  /** From the event's commit to its consumption: starts at the commit, ends when a consumer takes it. */
  postProcessingLag: "payment.post_processing.lag",
  /** One per service token verified by fraud-service (payment-service's ServiceAccount token). */
  serviceAuthentication: "service.authentication",
  /** One run of the migrate entry (root span of the migration Job). */
  ledgerMigrate: "ledger.migrate",
  /** One migration file applied, resource = the file name. */
  ledgerMigration: "ledger.migration",
} as const;

/**
 * Spans the APM monitors query. Trace metrics (`trace.<name>.hits|errors`, and the
 * `trace.<name>` distribution) only exist for service-entry spans and for spans marked
 * measured, so the app marks every one of these measured.
 */
export const MEASURED_SPANS = [
  SPANS.processPayment,
  SPANS.validation,
  SPANS.processing,
  SPANS.fraudDetection,
  SPANS.riskScoring,
  SPANS.databaseQuery,
  SPANS.postProcessing,
  SPANS.postProcessingLag,
  SPANS.userAuthentication,
  SPANS.serviceAuthentication,
] as const;

/** The local root span dd-trace's fastify integration creates for every request. */
export const HTTP_SERVER_SPAN = "fastify.request";

/** HTTP routes, also used by the probes the program renders. */
export const ROUTES = {
  payments: "/v1/payments",
  score: "/v1/score",
  liveness: "/healthz",
  readiness: "/readyz",
} as const;

/** Port every service listens on inside its container (env `PORT`). */
export const DEFAULT_PORT = 8080;

/** Tag keys the platform team relies on. */
export const TAGS = {
  transactionId: "payment.transaction_id",
  amount: "payment.amount",
  currency: "payment.currency",
  senderId: "payment.sender_id",
  receiverId: "payment.receiver_id",
  paymentMethod: "payment.payment_method",
  failureReason: "payment.failure_reason",
  finalStatus: "payment.final_status",
  fraudRiskScore: "payment.fraud_risk_score",
  fraudAction: "payment.fraud_action",
  customerTier: "business.customer_tier",
  crossBorder: "business.cross_border",
  fraudDecision: "fraud.decision",
  fraudRiskFactors: "fraud.risk_factors",
  fraudDegraded: "fraud.degraded",
  /**
   * "true" on a decline the client may retry (held or blocked on a degraded fraud score):
   * answered with `retryable: true` and not stored in the ledger, so a retry is decided anew.
   */
  retryable: "payment.retryable",
  /**
   * Set on the local root span in an early request hook, before any outgoing call, so
   * head-based sampling rules can match the payment flow on the span that decides.
   */
  flow: "payments.flow",
  /**
   * The customer tier on the local root span, for the tier sampling rules. Not
   * `business.customer_tier`: dd-trace (5.132.0, config/parsers.js toCamelCase) camel-cases
   * every key in DD_TRACE_SAMPLING_RULES, tag keys included, so a rule on a key with `_`
   * before a letter looks for `business.customerTier` and never matches. Sampling keys
   * have no `_`.
   */
  rootTier: "payments.tier",
  /**
   * The authentication outcome on the local root span (`ok` or `failed`), set in the
   * request hook before any outgoing call, so a sampling rule can keep every trace of a
   * refused caller. No `_` for the same camel-casing reason as `payments.tier`.
   */
  rootAuth: "payments.auth",
  /** On the root span of a request refused by the per-user rate limit. */
  rootRateLimited: "payments.rate_limited",
} as const;

/**
 * Measured per request (app/src/tracing/performance.ts), numeric: the first three on
 * payment.process_payment, the cache time on fraud-service's fraud.detection.
 */
export const PERFORMANCE_TAGS = {
  dbQueryCount: "performance.db_query_count",
  dbTotalTimeMs: "performance.db_total_time_ms",
  fraudCallMs: "performance.fraud_call_ms",
  cacheTimeMs: "performance.cache_time_ms",
} as const;

/** Values of `payments.auth` on the root span. */
export const ROOT_AUTH = { ok: "ok", failed: "failed" } as const;

/** Tags of the authentication spans: the outcome and who, never the token or its other claims. */
export const AUTH_TAGS = {
  result: "auth.result",
  failureReason: "auth.failure_reason",
  /** Datadog's standard user tag: the token's `sub`. */
  userId: "usr.id",
  /** The calling service account (`system:serviceaccount:<namespace>:<name>`). */
  serviceAccount: "auth.service_account",
} as const;

/** Why an authentication failed: the `auth.failure_reason` tag. */
export const AUTH_FAILURES = {
  missingToken: "missing_token",
  malformedToken: "malformed_token",
  expired: "expired",
  notYetValid: "not_yet_valid",
  badSignature: "bad_signature",
  wrongIssuer: "wrong_issuer",
  wrongAudience: "wrong_audience",
  wrongType: "wrong_type",
  algorithmNotAllowed: "algorithm_not_allowed",
  unknownKey: "unknown_key",
  invalidClaims: "invalid_claims",
  insufficientScope: "insufficient_scope",
  subjectNotAllowed: "subject_not_allowed",
  senderMismatch: "sender_mismatch",
  keysUnavailable: "keys_unavailable",
} as const;
export type AuthFailure = (typeof AUTH_FAILURES)[keyof typeof AUTH_FAILURES];

/** Values of the `payments.flow` tag on the HTTP root span. */
export const FLOWS = {
  payment: "payment",
  fraudScore: "fraud_score",
} as const;

/** Customer tiers the sampling policy knows. */
export const CUSTOMER_TIERS = ["standard", "premium", "enterprise"] as const;
export type CustomerTier = (typeof CUSTOMER_TIERS)[number];

/**
 * Further tag keys the services set (business annotations, step results, scoring). Kept
 * apart from `TAGS` so the keys the platform relies on stay a short list.
 */
export const DETAIL_TAGS = {
  idempotentReplay: "payment.idempotent_replay",
  validationResult: "payment.validation_result",
  balanceSufficient: "validation.balance_sufficient",
  withinLimits: "validation.within_limits",
  paymentMethodValid: "validation.payment_method_valid",
  transactionValue: "business.transaction_value",
  businessCurrency: "business.currency",
  productCategory: "business.product_category",
  senderCountry: "business.sender_country",
  receiverCountry: "business.receiver_country",
  userSegment: "business.user_segment",
  kycLevel: "business.kyc_level",
  userTenureDays: "business.user_tenure_days",
  fraudRiskScore: "fraud.risk_score",
  fraudConfidence: "fraud.confidence",
  modelVersion: "risk_scoring.model_version",
  velocityScore: "risk_scoring.velocity_score",
  deviceScore: "risk_scoring.device_score",
  amountScore: "risk_scoring.amount_score",
  overallScore: "risk_scoring.overall_score",
  dbOperation: "db.operation",
  dbRowCount: "db.row_count",
  eventId: "post_processing.event_id",
  eventType: "post_processing.event_type",
  /** relay | consumer */
  postProcessingStage: "post_processing.stage",
  consumer: "post_processing.consumer",
  /** Milliseconds from the event's commit to its consumption. */
  postProcessingLagMs: "post_processing.lag_ms",
  /** The event had been handled before (a redelivery or a republish): nothing changed. */
  duplicateEvent: "post_processing.duplicate",
  deliveryAttempt: "post_processing.attempt",
  migrationFile: "ledger.migration.file",
  migrationsApplied: "ledger.migrations.applied",
  migrationsSkipped: "ledger.migrations.skipped",
} as const;

/** Events the payment flow writes to the outbox, by name (also their routing key). */
export const EVENT_TYPES = {
  paymentCompleted: "payment.completed",
} as const;

/** The consumers of the outbox events; each has its own queue. */
export const CONSUMERS = ["receipts", "fraud-history"] as const;
export type ConsumerName = (typeof CONSUMERS)[number];

/** Values of `payment.failure_reason`; also the `error` code of the matching HTTP answer. */
export const FAILURE_REASONS = {
  insufficientFunds: "insufficient_funds",
  limitExceeded: "limit_exceeded",
  invalidPaymentMethod: "invalid_payment_method",
  senderNotFound: "sender_not_found",
  receiverNotFound: "receiver_not_found",
  fraudBlocked: "fraud_blocked",
  fraudReview: "fraud_review",
  fraudUnavailable: "fraud_unavailable",
  databaseUnavailable: "database_unavailable",
  /** The credit would overflow the receiver's balance (BIGINT): permanent, not a 5xx. */
  receiverBalanceLimit: "receiver_balance_limit",
  processingError: "processing_error",
  idempotencyKeyReused: "idempotency_key_reused",
} as const;
export type FailureReason = (typeof FAILURE_REASONS)[keyof typeof FAILURE_REASONS];

/** Fraud decisions, from least to most severe. */
export const FRAUD_DECISIONS = ["allow", "review", "block"] as const;
export type FraudDecision = (typeof FRAUD_DECISIONS)[number];
