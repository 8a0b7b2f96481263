import { tracer, type Span, type SpanContext } from "./tracer";
import { redactTag, type TagValue } from "./redaction";

export type Tags = Readonly<Record<string, TagValue>>;

/** The one path by which the app writes tags: every value is redacted first. */
export function setTags(span: Span | null | undefined, tags: Tags): void {
  if (!span) return;
  for (const [key, value] of Object.entries(tags)) {
    const recorded = redactTag(key, value);
    if (recorded !== undefined) span.setTag(key, recorded);
  }
}

/** error.type / error.message / error.stack for a thrown value; any of them marks the span as an error. */
export function errorTags(error: unknown): Tags {
  if (error instanceof Error) {
    return { "error.type": error.name, "error.message": error.message, "error.stack": error.stack };
  }
  return { "error.type": "Error", "error.message": String(error) };
}

export interface TracedOptions {
  /** Span resource; defaults to the span name. */
  readonly resource?: string;
  /**
   * The parent, when it is not the active span: the context of a payment carried across
   * the broker (see propagation.ts). Null or undefined: the active span, as usual.
   */
  readonly childOf?: SpanContext | null;
}

/**
 * Runs `fn` inside a measured span named `name` (so the span gets trace metrics), with
 * `tags` set first. A throw or rejection tags the span through `setTags` (redacted) and
 * is rethrown. Works for sync and async functions alike.
 */
export function traced<T>(name: string, fn: (span: Span) => T, tags?: Tags, options: TracedOptions = {}): T {
  // The `done` form lets this module record errors itself: dd-trace's own error path
  // would write the raw error message, bypassing redaction.
  const spanOptions = { measured: true, resource: options.resource, ...(options.childOf ? { childOf: options.childOf } : {}) };
  return tracer.trace(name, spanOptions, (span, done) => {
    const active = span as Span;
    const finish = done as () => void;
    const fail = (error: unknown): never => {
      setTags(active, errorTags(error));
      finish();
      throw error;
    };
    if (tags) setTags(active, tags);
    let result: T;
    try {
      result = fn(active);
    } catch (error) {
      return fail(error);
    }
    if (isPromiseLike(result)) {
      return result.then((value) => {
        finish();
        return value;
      }, fail) as T;
    }
    finish();
    return result;
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
