/**
 * npm run traces:analyze -- --stack prod [--since 1h] [--json] [--html FILE]
 * npm run traces:analyze -- --spans FILE [--stack prod] [--json] [--html FILE]
 *
 * The payment flow's figures (count, average, p50/p95/p99, error rate) and those of every
 * measured span, the slowest operations, the error patterns and the slowest trace, held
 * against the stack's monitor thresholds. From Datadog's Spans API for the stack's env and
 * site (DD_API_KEY and DD_APP_KEY from the environment, never printed), or offline from a
 * capture file of the local trace intake (`--spans`, format in analytics/spans-file.ts).
 *
 * Exit status: 0 report written, 1 Datadog refused or failed, 2 bad usage, stack or file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../components/config";
import { analyzeSpans, type TraceReport } from "../analytics/analyze";
import { DatadogSpansError, fetchDatadogSpans, parseSince } from "../analytics/datadog";
import { renderHtml } from "../analytics/html";
import { readSpansFile, SpansFileError } from "../analytics/spans-file";
import type { SpanRecord } from "../analytics/spans";
import { stackView, type StackView } from "../analytics/stack";
import { renderText } from "../analytics/text";

export interface AnalyzeCliOptions {
  readonly argv: readonly string[];
  /** Where DD_API_KEY and DD_APP_KEY are read. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Datadog API base URL instead of https://api.<site> (a local stand-in in tests). */
  readonly baseUrl?: string;
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
  /** "now" for `--since`. Default Date.now(). */
  readonly now?: number;
}

const USAGE = "usage: npm run traces:analyze -- (--stack <stack> [--since 1h] | --spans FILE [--stack <stack>]) [--json] [--html FILE] [--max-spans N]";

interface Args {
  stack?: string;
  since: string;
  spans?: string;
  json: boolean;
  html?: string;
  maxSpans: number;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { since: "1h", json: false, maxSpans: 10_000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || (inline === undefined && v.startsWith("--"))) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === "--stack" || flag === "-s") args.stack = value();
    else if (flag === "--since") args.since = value();
    else if (flag === "--spans") args.spans = value();
    else if (flag === "--html") args.html = value();
    else if (flag === "--json") args.json = true;
    else if (flag === "--max-spans") {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new UsageError("--max-spans must be a positive integer");
      args.maxSpans = n;
    } else throw new UsageError(`unknown argument ${arg}`);
  }
  if (!args.spans && !args.stack) throw new UsageError("--stack is required to query Datadog (or give --spans FILE)");
  return args;
}

/** The report of a capture file, held against `stack`'s thresholds (`--spans FILE`; also what `npm run demo` prints). */
export function reportFromSpansFile(file: string, stack: string | StackView): TraceReport {
  return reportOfCapture(readSpansFile(file), file, stack);
}

/** The same, for the spans of a capture file already read (`file` names it in the report). */
export function reportOfCapture(spans: readonly SpanRecord[], file: string, stack: string | StackView): TraceReport {
  const view = typeof stack === "string" ? stackView(stack) : stack;
  // A loop, not Math.min(...spread): a long capture has more spans than a call takes arguments.
  let fromMs: number | null = null;
  let toMs: number | null = null;
  for (const s of spans) {
    fromMs = fromMs === null ? s.startMs : Math.min(fromMs, s.startMs);
    toMs = toMs === null ? s.startMs + s.durationMs : Math.max(toMs, s.startMs + s.durationMs);
  }
  return analyzeSpans(spans, {
    thresholds: view.thresholds,
    source: {
      kind: "spans-file",
      description: file,
      stack: view.stack,
      env: view.env,
      fromMs,
      toMs,
    },
  });
}

/** Runs the command; resolves with the exit status. Never throws for an expected failure. */
export async function analyzeCommand(options: AnalyzeCliOptions): Promise<number> {
  const out = options.out ?? ((t: string) => process.stdout.write(`${t}\n`));
  const err = options.err ?? ((t: string) => process.stderr.write(`${t}\n`));
  const env = options.env ?? process.env;
  let args: Args;
  try {
    args = parseArgs(options.argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`traces:analyze: ${error.message}\n${USAGE}`);
    return 2;
  }
  let report: TraceReport;
  try {
    const stack = stackView(args.stack ?? "prod");
    if (args.spans) {
      report = reportFromSpansFile(args.spans, stack);
    } else {
      const now = options.now ?? Date.now();
      const fromMs = now - parseSince(args.since);
      const fetched = await fetchDatadogSpans({
        site: stack.site,
        env: stack.env,
        fromMs,
        toMs: now,
        apiKey: env.DD_API_KEY,
        appKey: env.DD_APP_KEY,
        baseUrl: options.baseUrl,
        maxSpans: args.maxSpans,
        progress: (line) => err(line),
      });
      report = analyzeSpans(fetched.spans, {
        thresholds: stack.thresholds,
        source: { kind: "datadog", description: fetched.description, stack: stack.stack, env: stack.env, fromMs, toMs: now },
      });
      report = { ...report, datadog: { truncated: fetched.truncated, totals: fetched.totals } };
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof SpansFileError || error instanceof UsageError) {
      err(`traces:analyze: ${error.message}`);
      return 2;
    }
    if (error instanceof DatadogSpansError) {
      err(`traces:analyze: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof Error && /^No stack file/.test(error.message)) {
      err(`traces:analyze: ${error.message}`);
      return 2;
    }
    throw error;
  }
  out(args.json ? JSON.stringify(report, null, 2) : renderText(report));
  if (args.html) {
    fs.mkdirSync(path.dirname(path.resolve(args.html)), { recursive: true });
    fs.writeFileSync(args.html, renderHtml(report));
    err(`traces:analyze: HTML report written to ${args.html}`);
  }
  return 0;
}

if (require.main === module) {
  analyzeCommand({ argv: process.argv.slice(2) }).then(
    (code) => process.exit(code),
    (error) => {
      console.error(`traces:analyze: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
