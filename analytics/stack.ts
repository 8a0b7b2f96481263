/** What the analysis takes from a stack's config: its env, its Datadog site, its monitor thresholds. */
import { parseStackSettings, PROJECT } from "../components/config";
import { stackConfigFromFile } from "../scripts/mock-engine";
import type { MonitorThresholds } from "./analyze";

export interface StackView {
  readonly stack: string;
  /** `payments-apm:environment`: the `env:` the spans carry. */
  readonly env: string;
  /** `payments-apm:datadog.site`. */
  readonly site: string;
  readonly thresholds: MonitorThresholds;
}

/**
 * Reads and validates `Pulumi.<stack>.yaml` with the program's own schema (a bad value
 * throws the ConfigError that names the key, as at preview).
 */
export function stackView(stack: string): StackView {
  const { config } = stackConfigFromFile(stack);
  const prefix = `${PROJECT}:`;
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!key.startsWith(prefix) || key === `${PROJECT}:databasePassword`) continue;
    const trimmed = value.trim();
    raw[key.slice(prefix.length)] = trimmed.startsWith("{") || trimmed.startsWith("[") ? JSON.parse(trimmed) : value;
  }
  const settings = parseStackSettings(raw);
  return {
    stack,
    env: settings.environment,
    site: settings.datadog.site,
    thresholds: {
      paymentLatencyP95Seconds: settings.monitors.paymentLatencyP95Seconds,
      paymentErrorRate: settings.monitors.paymentErrorRate,
      databaseLatencyP95Seconds: settings.monitors.databaseLatencyP95Seconds,
    },
  };
}
