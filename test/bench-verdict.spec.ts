import * as assert from "node:assert/strict";
import { figure, judge, judgeCost, judgeCut, median, paired, type Goal } from "../bench/lib/verdict";

const cpuAdded: Goal = { target: 0.5, bound: "max", impossibleBeyond: 0 };
const throughputRatio: Goal = { target: 0.8, bound: "min", impossibleBeyond: 1 };

describe("benchmark verdicts (bench/lib/verdict.ts)", () => {
  it("takes the median and the min-max spread of the rounds, ignoring rounds without a value", () => {
    assert.deepEqual(figure([0.9, 0.2, 0.4, Number.NaN, 0.3, 0.6]), { median: 0.4, min: 0.2, max: 0.9, rounds: 5 });
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.deepEqual(paired([3, 5], [1, 1], (a, b) => a - b), [2, 4]);
  });

  it("says met only when the whole spread meets the goal", () => {
    assert.deepEqual(judge(figure([0.1, 0.2, 0.3, 0.4, 0.5]), cpuAdded), { verdict: "met" });
    assert.deepEqual(judge(figure([0.81, 0.9, 0.85, 0.95, 0.99]), throughputRatio), { verdict: "met" });
  });

  it("says not met only when none of the spread meets it", () => {
    assert.deepEqual(judge(figure([0.6, 1.2, 0.9, 1.0, 0.7]), cpuAdded), { verdict: "not met" });
    assert.deepEqual(judge(figure([0.4, 0.5, 0.79, 0.6, 0.3]), throughputRatio), { verdict: "not met" });
  });

  it("is undecided when the spread crosses the goal, even with the median on the good side", () => {
    const judged = judge(figure([0.2, 0.3, 0.35, 0.4, 0.7]), cpuAdded);
    assert.equal(judged.verdict, "undecided");
    assert.match(judged.reason!, /spread crosses/);
  });

  it("reports an impossible median (negative added cost, traced faster than untraced) as noise, never met", () => {
    const negative = judge(figure([-146.79, -0.2, -0.1, 0.1, -0.3]), cpuAdded);
    assert.equal(negative.verdict, "undecided");
    assert.match(negative.reason!, /noise/);
    assert.equal(judge(figure([1.1, 1.3, 0.9, 1.2, 1.05]), throughputRatio).verdict, "undecided");
  });

  it("decides nothing from fewer than five rounds", () => {
    const judged = judge(figure([0.1, 0.1, 0.1, 0.1]), cpuAdded);
    assert.equal(judged.verdict, "undecided");
    assert.match(judged.reason!, /4 round\(s\)/);
  });

  it("keeps a candidate cut only when every round saved CPU", () => {
    assert.equal(judgeCut(figure([-0.1, -0.2, -0.05, -0.15, -0.1])), "kept");
    assert.equal(judgeCut(figure([-0.1, -0.2, 0.05, -0.15, -0.1])), "not kept: undecided");
    assert.equal(judgeCut(figure([0.1, 0.2, 0.05, 0.15, 0.1])), "not kept: costs more");
    assert.equal(judgeCut(figure([-0.1, -0.2, -0.05])), "not kept: undecided");
  });

  it("says a feature costs CPU only when every round says so, and a negative cost in every round is noise", () => {
    assert.equal(judgeCost(figure([0.1, 0.2, 0.05, 0.15, 0.1])), "costs CPU");
    assert.equal(judgeCost(figure([0.1, 0.2, -0.05, 0.15, 0.1])), "undecided");
    assert.equal(judgeCost(figure([-0.1, -0.2, -0.05, -0.15, -0.1])), "noise: negative");
    assert.equal(judgeCost(figure([0.1, 0.2, 0.3, 0.4])), "undecided");
  });
});
