/**
 * npm run monitors:validate -- --stack <name>
 *
 * Renders the stack offline (the real program under the mock engine, like `npm run render`)
 * and asks Datadog to validate each monitor it would create
 * (`POST /api/v1/monitor/validate`), printing OK or Datadog's error per monitor. Exits 1 if
 * Datadog rejects any monitor or cannot be asked, 2 on bad usage or a bad stack config.
 *
 * Needs DD_API_KEY and DD_APP_KEY in the environment (DD_SITE optional; default: the stack's
 * payments-apm:datadog.site). Without both keys it says it skipped and exits 0, so it can run
 * where no keys are available. The keys are never printed.
 */
import type * as DatadogCommon from "@datadog/datadog-api-client/dist/packages/datadog-api-client-common";
import type { Monitor } from "@datadog/datadog-api-client/dist/packages/datadog-api-client-v1";
import { ConfigError } from "../components/config";
import { datadogObjects } from "./manifests";
import { runStack, stackConfigFromFile, type ProgramRun } from "./mock-engine";

export interface ValidateOptions {
  readonly stack: string;
  /** Where DD_API_KEY, DD_APP_KEY and DD_SITE are read. Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Datadog API base URL, e.g. a local stand-in in tests. Default: https://api.<site>. */
  readonly baseUrl?: string;
  /** Per-request timeout. Default 30 s. */
  readonly timeoutMs?: number;
  /** Where lines are written. Default: console.log. */
  readonly log?: (line: string) => void;
  /** Renders the stack. Default: {@link runStack} (tests pass a cached run). */
  readonly render?: (stack: string) => Promise<ProgramRun>;
}

/** Provider inputs that map one-to-one to `options.*` of the API's Monitor. */
const OPTION_INPUTS = [
  "enableLogsSample",
  "enableSamples",
  "escalationMessage",
  "evaluationDelay",
  "groupRetentionDuration",
  "groupbySimpleMonitor",
  "includeTags",
  "minFailureDuration",
  "minLocationFailed",
  "newGroupDelay",
  "newHostDelay",
  "noDataTimeframe",
  "notificationPresetName",
  "notifyAudit",
  "notifyBy",
  "notifyNoData",
  "onMissingData",
  "renotifyInterval",
  "renotifyOccurrences",
  "renotifyStatuses",
  "requireFullWindow",
  "timeoutH",
] as const;
const TOP_LEVEL_INPUTS = ["name", "type", "query", "message", "tags", "priority", "restrictedRoles"] as const;
/** Provider-only settings with no place in the API's Monitor. */
const PROVIDER_ONLY_INPUTS = ["validate", "forceDelete"];

const numberOrUndefined = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : Number(v));

/**
 * The API request body for a `datadog.Monitor`'s inputs (`monitorThresholds` strings become
 * `options.thresholds` numbers), plus the input keys it could not place.
 */
export function monitorRequestBody(inputs: Readonly<Record<string, any>>): { body: Monitor; unplaced: string[] } {
  const options: Record<string, unknown> = {};
  for (const key of OPTION_INPUTS) if (inputs[key] !== undefined) options[key] = inputs[key];
  const t = inputs.monitorThresholds ?? {};
  const thresholds = Object.fromEntries(
    ["critical", "criticalRecovery", "ok", "unknown", "warning", "warningRecovery"].flatMap((k) => (numberOrUndefined(t[k]) === undefined ? [] : [[k, numberOrUndefined(t[k])]])),
  );
  if (Object.keys(thresholds).length > 0) options.thresholds = thresholds;
  if (inputs.monitorThresholdWindows) options.thresholdWindows = inputs.monitorThresholdWindows;
  const body: Record<string, unknown> = { options };
  for (const key of TOP_LEVEL_INPUTS) if (inputs[key] !== undefined) body[key] = key === "priority" ? Number(inputs[key]) : inputs[key];
  const placed = new Set<string>([...OPTION_INPUTS, ...TOP_LEVEL_INPUTS, ...PROVIDER_ONLY_INPUTS, "monitorThresholds", "monitorThresholdWindows"]);
  return { body: body as unknown as Monitor, unplaced: Object.keys(inputs).filter((k) => !placed.has(k)) };
}

/**
 * The Datadog client, loaded only when there is something to send. Its v1 and common
 * packages: the package root also loads the whole v2 API (about 2 s more at startup).
 */
async function loadClient() {
  const [common, api, log] = await Promise.all([
    import("@datadog/datadog-api-client/dist/packages/datadog-api-client-common"),
    import("@datadog/datadog-api-client/dist/packages/datadog-api-client-v1"),
    import("@datadog/datadog-api-client/dist/logger"),
  ]);
  return { client: common, v1: api, logger: log.logger };
}

/** Datadog's answer to a failed request, as one line. */
function describeFailure(client: typeof DatadogCommon, error: unknown): { rejected: boolean; text: string } {
  if (error instanceof client.ApiException) {
    const body = error.body as { errors?: unknown[] } | string | undefined;
    const detail = typeof body === "object" && body && Array.isArray(body.errors) ? body.errors.map(String).join("; ") : JSON.stringify(body);
    return { rejected: error.code === 400, text: `HTTP ${error.code}: ${detail}` };
  }
  const e = error as { name?: string; message?: string; cause?: { message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return { rejected: false, text: "timed out" };
  const cause = e.cause?.message ? ` (${e.cause.message})` : "";
  return { rejected: false, text: `request failed: ${e.message ?? String(error)}${cause}` };
}

/** The stack's `payments-apm:datadog.site`, or datadoghq.com. */
function stackSite(stack: string): string {
  const raw = stackConfigFromFile(stack).config["payments-apm:datadog"];
  try {
    return (raw && JSON.parse(raw).site) || "datadoghq.com";
  } catch {
    return "datadoghq.com";
  }
}

/** Validates the stack's monitors against Datadog; returns the exit code. */
export async function validateStackMonitors(options: ValidateOptions): Promise<number> {
  const env = options.env ?? process.env;
  const apiKey = env.DD_API_KEY?.trim();
  const appKey = env.DD_APP_KEY?.trim();
  const secrets = [apiKey, appKey].filter((k): k is string => !!k);
  // Nothing printed can carry a key, even if a server echoes the request back.
  const redact = (text: string) => secrets.filter((k) => k.length >= 4).reduce((t, k) => t.split(k).join("[redacted]"), text);
  const log = (line: string) => (options.log ?? console.log)(redact(line));

  let site: string;
  try {
    site = env.DD_SITE?.trim() || stackSite(options.stack);
  } catch (e) {
    log(`monitors:validate: ${(e as Error).message}`);
    return 2;
  }
  const missing = [apiKey ? undefined : "DD_API_KEY", appKey ? undefined : "DD_APP_KEY"].filter(Boolean);
  if (missing.length > 0) {
    log(`monitors:validate: SKIPPED for stack ${options.stack}: ${missing.join(" and ")} not set. Set DD_API_KEY and DD_APP_KEY (and DD_SITE if not ${site}) to validate the monitors against Datadog.`);
    return 0;
  }

  let monitors: { name: string; inputs: Record<string, unknown> }[];
  try {
    const run = await (options.render ?? runStack)(options.stack);
    monitors = datadogObjects(run).filter((d) => d.kind === "Monitor");
  } catch (e) {
    log(`monitors:validate: cannot render stack ${options.stack}: ${e instanceof ConfigError ? e.message : (e as Error).stack ?? String(e)}`);
    return 2;
  }

  const { client, v1, logger } = await loadClient();
  // The client logs failed requests itself, stack traces included: this script reports them.
  logger.setLevel("silent");
  const baseServer = options.baseUrl ? new client.BaseServerConfiguration(options.baseUrl.replace(/\/$/, ""), {}) : undefined;
  const target = options.baseUrl ?? `https://api.${site}`;
  log(`monitors:validate: stack ${options.stack}: ${monitors.length} monitor(s) → ${target}/api/v1/monitor/validate`);

  let failures = 0;
  for (const monitor of monitors) {
    const configuration = client.createConfiguration({
      authMethods: { apiKeyAuth: apiKey, appKeyAuth: appKey },
      // Node's own fetch: the client's default (node-fetch 2) fails on some chunked answers
      // with "Premature close" (node-fetch#1576, #1767).
      fetch: globalThis.fetch,
      baseServer,
      httpConfig: { signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) },
    });
    if (!baseServer) configuration.setServerVariables({ site });
    const { body, unplaced } = monitorRequestBody(monitor.inputs);
    const label = `${monitor.name} (${String(body.name)})`;
    try {
      await new v1.MonitorsApi(configuration).validateMonitor({ body });
      log(`  OK        ${label}`);
    } catch (error) {
      failures++;
      const { rejected, text } = describeFailure(client, error);
      log(`  ${rejected ? "REJECTED" : "ERROR   "}  ${label}: ${text}`);
    }
    if (unplaced.length > 0) log(`            (not part of the validation request: ${unplaced.join(", ")})`);
  }
  log(failures === 0 ? `monitors:validate: all ${monitors.length} monitor(s) valid` : `monitors:validate: ${failures} of ${monitors.length} monitor(s) not validated`);
  return failures === 0 ? 0 : 1;
}

function parseArgs(argv: string[]): { stack: string } {
  const usage = "usage: npm run monitors:validate -- --stack <prod|staging|…>";
  let stack: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--stack" || arg === "-s") stack = argv[++i];
    else if (arg.startsWith("--stack=")) stack = arg.slice("--stack=".length);
    else if (arg === "--help" || arg === "-h") {
      console.log(usage);
      process.exit(0);
    } else {
      console.error(`monitors:validate: unknown argument ${arg} (${usage})`);
      process.exit(2);
    }
  }
  if (!stack || stack.startsWith("--")) {
    console.error(`monitors:validate: --stack is required (${usage})`);
    process.exit(2);
  }
  return { stack };
}

if (require.main === module) {
  validateStackMonitors(parseArgs(process.argv.slice(2))).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`monitors:validate: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
