/** The configurations a benchmark run alternates between. */
import type { ServiceOverrides } from "./stand";

export type ServiceConfigId = "untraced" | "traced-prod" | "traced-100";
export type ConfigId = ServiceConfigId | "ceiling";

export interface ServiceConfig {
  readonly id: ServiceConfigId;
  readonly title: string;
  readonly description: string;
  /** On top of the env rendered for prod (applied to both services). */
  readonly overrides: ServiceOverrides;
}

export const SERVICE_CONFIGS: readonly ServiceConfig[] = [
  {
    id: "untraced",
    title: "untraced",
    description: "The prod env with DD_TRACE_ENABLED=false: dd-trace is loaded and initialised but creates and sends no spans.",
    overrides: { DD_TRACE_ENABLED: "false" },
  },
  {
    id: "traced-prod",
    title: "traced, prod sampling",
    description:
      "The env the program renders for prod, unchanged: DD_TRACE_SAMPLE_RATE=0.1 plus rules, the first of which keeps " +
      "every payment-flow root (fastify.request with payments.flow=payment, sample_rate 1), and DD_TRACE_RATE_LIMIT=500. " +
      "Every trace is built and sent either way; the kept share is what the intake saw as priority 2.",
    overrides: {},
  },
  {
    id: "traced-100",
    title: "traced, 100 %",
    description:
      "DD_TRACE_SAMPLE_RATE=1 with no sampling rules and DD_TRACE_RATE_LIMIT=-1 (no rate limit), so every trace is kept.",
    overrides: { DD_TRACE_SAMPLE_RATE: "1", DD_TRACE_SAMPLING_RULES: undefined, DD_TRACE_RATE_LIMIT: "-1" },
  },
];

export const CEILING_DESCRIPTION =
  "pgbench running the payment's own SQL (bench/ledger-transfer.pgbench.sql: idempotency lookup, wallet read, the " +
  "transfer_funds call: transfer, ledger entries and outbox event in one transaction) on the same database, at the load " +
  "generator's concurrency, for the same duration.";
