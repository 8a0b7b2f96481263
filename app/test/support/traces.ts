/** Finding spans in what the trace intake captured. */
import type { CapturedSpan, TraceIntake } from "./trace-intake";

/** A number in letters (0 → a … 9 → j): for a marker that must survive digit-run scrubbing. */
export function lettersOf(n: number): string {
  return String(n).replace(/[0-9]/g, (d) => String.fromCharCode(97 + Number(d)));
}

export function isRoot(span: CapturedSpan): boolean {
  return span.parentId === "0";
}

/** The one span named `name` (of `service`, if given) in `trace`; throws with the trace if absent or repeated. */
export function onlySpan(trace: CapturedSpan[], name: string, service?: string): CapturedSpan {
  const found = trace.filter((s) => s.name === name && (service === undefined || s.service === service));
  if (found.length !== 1) {
    throw new Error(`expected one ${name} span${service ? ` of ${service}` : ""}, found ${found.length} in:\n${describe(trace)}`);
  }
  return found[0];
}

export function childrenOf(trace: CapturedSpan[], parent: CapturedSpan): CapturedSpan[] {
  return trace.filter((s) => s.parentId === parent.spanId);
}

export function describe(trace: CapturedSpan[]): string {
  return trace
    .map((s) => `  ${s.service} ${s.name} ${JSON.stringify(s.resource)} span=${s.spanId} parent=${s.parentId}${s.error ? " error" : ""}`)
    .join("\n");
}

/**
 * Resolves with the first trace that holds a span matching `match` and, complete, the
 * local root span of each of `services` (each process sends its part of a trace in one
 * payload when its root span ends).
 */
export function waitForTrace(
  intake: TraceIntake,
  match: (span: CapturedSpan) => boolean,
  services: readonly string[],
  timeoutMs?: number,
): Promise<CapturedSpan[]> {
  return intake.waitForTrace(
    (trace) =>
      trace.some(match) &&
      services.every((service) => trace.some((s) => s.service === service && s.name === "fastify.request")),
    timeoutMs,
  );
}

/** A span whose meta has `key` = `value`. */
export function tagged(key: string, value: string): (span: CapturedSpan) => boolean {
  return (span) => span.meta[key] === value;
}
