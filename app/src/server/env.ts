import { z } from "zod";
import { DEFAULT_PORT } from "../tracing/conventions";

/** An unset or empty variable takes the default. */
const unsetIfEmpty = (value: unknown) => (value === "" ? undefined : value);

export function integerVar(defaultValue: number, min: number, max: number) {
  return z.preprocess(unsetIfEmpty, z.coerce.number().int().min(min).max(max).default(defaultValue));
}

export function stringVar(defaultValue: string) {
  return z.preprocess(unsetIfEmpty, z.string().default(defaultValue));
}

/** Variables every service reads. */
export const commonEnv = {
  PORT: integerVar(DEFAULT_PORT, 0, 65535),
  HOST: stringVar("0.0.0.0"),
  LOG_LEVEL: z.preprocess(
    unsetIfEmpty,
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
  /** Upper bound on draining requests, closing pools and flushing traces after SIGTERM. */
  SHUTDOWN_TIMEOUT_MS: integerVar(20_000, 100, 600_000),
};

/**
 * Parses the environment or exits with one line per bad variable, naming it. Runs before
 * the logger exists (LOG_LEVEL is one of the variables), hence the hand-written JSON line.
 */
export function loadEnv<T extends z.ZodRawShape>(shape: T, env: NodeJS.ProcessEnv = process.env) {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const variable = issue.path.join(".");
    const line = { level: "fatal", msg: `invalid environment: ${variable}: ${issue.message}`, variable };
    process.stderr.write(`${JSON.stringify(line)}\n`);
  }
  process.exit(1);
}
