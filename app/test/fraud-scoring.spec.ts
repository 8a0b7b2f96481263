import assert from "node:assert/strict";
import {
  MODEL_VERSION,
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

  it("scores a device: known 0, none sent 30, new 40, new and paying by card 75", function () {
    assert.deepEqual(
      [deviceScore("known", "card"), deviceScore("absent", "card"), deviceScore("new", "wallet"), deviceScore("new", "bank_account"), deviceScore("new", "card")],
      [0, 30, 40, 40, 75],
    );
  });

  it("scores an amount by its share of the tier's unusual amount, each band's upper edge included", function () {
    // standard: unusual from 500 000 minor units; 2 % = 10 000, 20 % = 100 000, 60 % = 300 000.
    const scores = [10_000, 10_001, 100_000, 100_001, 300_000, 300_001, 500_000, 500_001].map((a) => amountScore(a, "standard"));
    assert.deepEqual(scores, [5, 25, 25, 50, 50, 70, 70, 95]);
    assert.equal(amountScore(2_500_000, "premium"), 70);
    assert.equal(amountScore(25_000_001, "enterprise"), 95);
  });

  it("weighs velocity 45 %, device 15 % and amount 40 %, to two decimals", function () {
    assert.equal(overallScore({ velocity: 100, device: 0, amount: 0 }), 45);
    assert.equal(overallScore({ velocity: 0, device: 100, amount: 0 }), 15);
    assert.equal(overallScore({ velocity: 0, device: 0, amount: 100 }), 40);
    assert.equal(overallScore({ velocity: 33, device: 41, amount: 7 }), 23.8); // 14.85 + 6.15 + 2.8
    assert.equal(overallScore({ velocity: 1, device: 1, amount: 1 / 3 }), 0.73);
  });

  it("counts a component above 70, not at 70, as a risk factor", function () {
    assert.deepEqual(riskFactors({ velocity: 70, device: 70, amount: 70 }), []);
    assert.deepEqual(riskFactors({ velocity: 71, device: 71, amount: 71 }), ["high_velocity", "suspicious_device", "unusual_amount"]);
    assert.deepEqual(riskFactors({ velocity: 71, device: 0, amount: 0 }), ["high_velocity"]);
  });

  it("blocks from 70 or two factors, reviews from 40 or one factor, allows below", function () {
    assert.equal(decide(70, [], false).decision, "block");
    assert.equal(decide(69.99, [], false).decision, "review");
    assert.equal(decide(40, [], false).decision, "review");
    assert.equal(decide(39.99, [], false).decision, "allow");
    assert.equal(decide(10, ["unusual_amount"], false).decision, "review");
    assert.equal(decide(10, ["unusual_amount", "suspicious_device"], false).decision, "block");
  });

  it("is 0.5 confident on a threshold and more the farther the score sits from the nearest one", function () {
    // 0.5 + distance / 60, capped at 1, two decimals; 0.5 whenever velocity data is missing.
    assert.deepEqual(
      [decide(40, [], false), decide(70, [], false), decide(55, [], false), decide(10, [], false), decide(0, [], false), decide(100, [], false), decide(47, [], false)].map((d) => d.confidence),
      [0.5, 0.5, 0.75, 1, 1, 1, 0.62],
    );
    assert.equal(decide(55, [], true).confidence, 0.5);
  });

  it("records the model version the decisions come from", function () {
    assert.equal(MODEL_VERSION, "2.1.0");
  });
});
