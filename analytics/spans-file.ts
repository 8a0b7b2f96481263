/**
 * The capture file the local trace intake writes (`TraceIntake.start({ captureFile })`,
 * app/test/support/trace-intake.ts): JSON lines, one span per line, in the fields of the
 * Agent's v0.4 trace protocol —
 *
 *   {"trace_id":"…","span_id":"…","parent_id":"0","service":"payment-service",
 *    "name":"payment.process_payment","resource":"…","type":"web",
 *    "start":"1764828000123456789","duration":1234567,"error":0,
 *    "meta":{"payment.final_status":"completed",…},"metrics":{"_dd.measured":1,…}}
 *
 * Ids are unsigned decimal strings (the low 64 bits), `start` is nanoseconds since the
 * Unix epoch as a decimal string (too large for a JSON number), `duration` nanoseconds,
 * `error` 0 or 1, `type` optional. Blank lines are ignored.
 */
import * as fs from "node:fs";
import type { SpanRecord } from "./spans";

export class SpansFileError extends Error {
  override readonly name = "SpansFileError";
}

/** Parses capture-file text; a bad line throws naming its line number. */
export function parseSpansFile(text: string, where = "spans file"): SpanRecord[] {
  const spans: SpanRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const at = `${where}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (error) {
      throw new SpansFileError(`${at}: not JSON (${(error as Error).message})`);
    }
    spans.push(spanFromLine(raw, at));
  }
  return spans;
}

export function readSpansFile(file: string): SpanRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new SpansFileError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseSpansFile(text, file);
}

function spanFromLine(raw: unknown, at: string): SpanRecord {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new SpansFileError(`${at}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  const id = (key: string) => {
    const v = o[key];
    if (typeof v !== "string" || !/^\d+$/.test(v)) throw new SpansFileError(`${at}: ${key} must be a decimal string, got ${JSON.stringify(v)}`);
    return v;
  };
  const text = (key: string) => {
    const v = o[key];
    if (typeof v !== "string") throw new SpansFileError(`${at}: ${key} must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const traceId = id("trace_id");
  const spanId = id("span_id");
  const parentId = id("parent_id");
  const duration = o.duration;
  if (typeof duration !== "number" || !(duration >= 0)) throw new SpansFileError(`${at}: duration must be a number of nanoseconds ≥ 0`);
  const start = id("start");
  const map = <T>(key: string, ok: (v: unknown) => v is T): Record<string, T> => {
    const v = o[key] ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new SpansFileError(`${at}: ${key} must be an object`);
    for (const [k, x] of Object.entries(v)) if (!ok(x)) throw new SpansFileError(`${at}: ${key}.${k} has the wrong type`);
    return v as Record<string, T>;
  };
  return {
    traceId,
    spanId,
    parentId,
    service: text("service"),
    name: text("name"),
    resource: text("resource"),
    // ns → ms without losing the sub-millisecond part to a 64-bit float first.
    startMs: Number(BigInt(start) / 1000n) / 1000,
    durationMs: duration / 1e6,
    error: o.error === 1,
    meta: map("meta", (v): v is string => typeof v === "string"),
    metrics: map("metrics", (v): v is number => typeof v === "number"),
  };
}
