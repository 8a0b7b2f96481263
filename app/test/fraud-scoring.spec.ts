import assert from "node:assert/strict";
import {
  amountScore,
  decide,
  deviceScore,
  overallScore,
  riskFactors,
  velocityScore,
  type ComponentScores,
} from "../src/fraud-service/scoring";

function assess(components: ComponentScores) {
  const score = overallScore(components);
  const factors = riskFactors(components);
  return { score, factors, ...decide(score, factors, false) };
}

describe("fraud scoring", function () {
  it("allows a first small wallet payment", function () {
    const result = assess({ velocity: velocityScore(1, "standard"), device: deviceScore("absent", "wallet"), amount: amountScore(2_500, "standard") });
    assert.equal(result.decision, "allow");
    assert.deepEqual(result.factors, []);
  });

  it("reviews an amount unusual for the tier", function () {
    const result = assess({ velocity: velocityScore(1, "standard"), device: deviceScore("absent", "wallet"), amount: amountScore(900_000, "standard") });
    assert.equal(result.decision, "review");
    assert.deepEqual(result.factors, ["unusual_amount"]);
  });

  it("blocks two independent risk factors: an unseen device paying an unusual amount by card", function () {
    const result = assess({ velocity: velocityScore(1, "standard"), device: deviceScore("new", "card"), amount: amountScore(900_000, "standard") });
    assert.equal(result.decision, "block");
    assert.deepEqual(result.factors, ["suspicious_device", "unusual_amount"]);
  });

  it("flags velocity relative to the tier", function () {
    assert.ok(velocityScore(5, "standard") > 70);
    assert.ok(velocityScore(5, "enterprise") < 10);
    assert.equal(velocityScore(1_000, "standard"), 100);
  });

  it("never allows outright without velocity data", function () {
    assert.equal(decide(0, [], true).decision, "review");
    assert.equal(decide(80, [], true).decision, "block");
  });
});
