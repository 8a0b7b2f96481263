/**
 * Figures and verdicts that hold on a noisy machine. A figure is the median of per-round
 * values with their min-max spread; rounds alternate the configurations, so each round
 * pairs values measured next to each other in time. A goal is "met" only when the whole
 * spread meets it, "not met" only when none of it does, "undecided" otherwise or with
 * fewer than MIN_ROUNDS rounds. A cost that cannot be negative (CPU added by tracing) or a
 * ratio that cannot exceed 1 (traced ÷ untraced throughput) whose median says otherwise is
 * noise, never a pass.
 */

/** Rounds a verdict needs: fewer and every goal is undecided. */
export const MIN_ROUNDS = 5;

export interface Figure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: number;
}

export interface Goal {
  readonly target: number;
  /** "max": the figure must stay at or below the target; "min": at or above it. */
  readonly bound: "max" | "min";
  /** The figure's physical limit on the other side: a median beyond it is noise. */
  readonly impossibleBeyond?: number;
}

interface Judgement {
  readonly verdict: "met" | "not met" | "undecided";
  /** Why it is undecided (or "noise"), for the page. */
  readonly reason?: string;
}

export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

export function figure(values: readonly number[]): Figure {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), rounds: finite.length };
}

/** Per-round differences a[i] − b[i] (values of the same round). */
export function paired(a: readonly number[], b: readonly number[], op: (x: number, y: number) => number): number[] {
  return a.map((x, i) => op(x, b[i]));
}

/** True when the median lies beyond what the figure can physically be. */
export function isNoise(f: Figure, goal: Goal): boolean {
  if (goal.impossibleBeyond === undefined || !Number.isFinite(f.median)) return false;
  return goal.bound === "max" ? f.median < goal.impossibleBeyond : f.median > goal.impossibleBeyond;
}

export function judge(f: Figure, goal: Goal): Judgement {
  if (f.rounds < MIN_ROUNDS) return { verdict: "undecided", reason: `${f.rounds} round(s), fewer than ${MIN_ROUNDS}` };
  if (isNoise(f, goal)) return { verdict: "undecided", reason: "noise: the median is impossible for this figure" };
  const meets = (v: number) => (goal.bound === "max" ? v <= goal.target : v >= goal.target);
  if (meets(f.min) && meets(f.max)) return { verdict: "met" };
  if (!meets(f.min) && !meets(f.max)) return { verdict: "not met" };
  return { verdict: "undecided", reason: "the spread crosses the goal" };
}

/**
 * A candidate cut's effect on CPU per payment against its reference, per round: kept only
 * when every round saved CPU (the whole spread below zero) over at least MIN_ROUNDS rounds.
 */
export function judgeCut(saving: Figure): "kept" | "not kept: costs more" | "not kept: undecided" {
  if (saving.rounds >= MIN_ROUNDS && saving.max < 0) return "kept";
  if (saving.rounds >= MIN_ROUNDS && saving.min > 0) return "not kept: costs more";
  return "not kept: undecided";
}

/**
 * What a feature costs per payment (traced − the same with the feature off, per round): it
 * costs only when every round says so over at least MIN_ROUNDS rounds; a cost below zero
 * in every round is noise (turning a feature off adds no work).
 */
export function judgeCost(cost: Figure): "costs CPU" | "noise: negative" | "undecided" {
  if (cost.rounds >= MIN_ROUNDS && cost.min > 0) return "costs CPU";
  if (cost.rounds >= MIN_ROUNDS && cost.max < 0) return "noise: negative";
  return "undecided";
}
