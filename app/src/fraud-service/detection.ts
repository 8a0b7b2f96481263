/** POST /v1/score, step by step: fraud.detection → fraud.risk_scoring → decision. */
import type Redis from "ioredis";
import { DETAIL_TAGS, SPANS, TAGS } from "../tracing/conventions";
import type { Logger } from "../tracing/logger";
import { annotateCacheTime, elapsedMs, startTimer } from "../tracing/performance";
import { setTags, traced } from "../tracing/spans";
import type { ScoreRequest, ScoreResponse } from "./api";
import { readHistory, type HistorySettings, type SenderHistory } from "./history";
import {
  MODEL_VERSION,
  amountScore,
  decide,
  deviceScore,
  overallScore,
  riskFactors,
  velocityScore,
  type ComponentScores,
} from "./scoring";

export interface DetectionDeps {
  readonly redis: Redis;
  readonly history: HistorySettings;
  readonly logger: Logger;
}

interface RiskAssessment {
  readonly score: number;
  readonly factors: string[];
  readonly degraded: boolean;
  /** Wall time of the Redis round trip for the sender's history, answered or not. */
  readonly cacheMs: number;
}

export function detectFraud(deps: DetectionDeps, request: ScoreRequest): Promise<ScoreResponse> {
  return traced(
    SPANS.fraudDetection,
    async (span) => {
      const risk = await scoreRisk(deps, request);
      const { decision, confidence } = decide(risk.score, risk.factors, risk.degraded);
      setTags(span, {
        [DETAIL_TAGS.fraudRiskScore]: risk.score,
        [TAGS.fraudRiskFactors]: risk.factors,
        [TAGS.fraudDecision]: decision,
        [DETAIL_TAGS.fraudConfidence]: confidence,
        [TAGS.fraudDegraded]: risk.degraded,
      });
      annotateCacheTime(span, risk.cacheMs);
      return {
        decision,
        risk_score: risk.score,
        risk_factors: risk.factors,
        confidence,
        degraded: risk.degraded,
        model_version: MODEL_VERSION,
      };
    },
    {
      "fraud.transaction_id": request.transaction_id,
      "fraud.amount": request.amount,
      "fraud.currency": request.currency,
      "fraud.sender_id": request.sender_id,
      "fraud.payment_method": request.payment_method_type,
      [TAGS.customerTier]: request.customer_tier,
    },
  );
}

function scoreRisk(deps: DetectionDeps, request: ScoreRequest): Promise<RiskAssessment> {
  return traced(
    SPANS.riskScoring,
    async (span) => {
      let history: SenderHistory;
      let degraded = false;
      const started = startTimer();
      let cacheMs: number;
      try {
        history = await readHistory(deps.redis, deps.history, request.sender_id, request.device);
        cacheMs = elapsedMs(started);
      } catch (error) {
        cacheMs = elapsedMs(started);
        // No velocity data: score what is known and let `decide` hold the payment for review.
        deps.logger.warn({ err: error }, "sender history unavailable, scoring degraded");
        degraded = true;
        history = { paymentsInWindow: 1, device: request.device ? "new" : "absent" };
      }
      const tier = request.customer_tier ?? "standard";
      const components: ComponentScores = {
        velocity: velocityScore(history.paymentsInWindow, tier),
        device: deviceScore(history.device, request.payment_method_type),
        amount: amountScore(request.amount, tier),
      };
      const score = overallScore(components);
      const factors = riskFactors(components);
      setTags(span, {
        [DETAIL_TAGS.velocityScore]: components.velocity,
        [DETAIL_TAGS.deviceScore]: components.device,
        [DETAIL_TAGS.amountScore]: components.amount,
        [DETAIL_TAGS.overallScore]: score,
        "risk_scoring.risk_factors": factors,
        [TAGS.fraudDegraded]: degraded,
      });
      return { score, factors, degraded, cacheMs };
    },
    { [DETAIL_TAGS.modelVersion]: MODEL_VERSION },
  );
}
