import type * as ConfigModule from "../../components/config";
import { stackConfigFromFile } from "../../scripts/mock-engine";
import { configModule } from "./per-test-module";

/**
 * The `payments-apm:*` values of Pulumi.<stack>.yaml as the program receives them, parsed
 * (with the config module loaded for the running test, or the one given).
 */
export function rawSettings(stack: string, { PROJECT, SECRET_KEYS }: Pick<typeof ConfigModule, "PROJECT" | "SECRET_KEYS"> = configModule()): Record<string, any> {
  const { config } = stackConfigFromFile(stack);
  const raw: Record<string, any> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!key.startsWith(`${PROJECT}:`) || (Object.values(SECRET_KEYS) as string[]).includes(key)) continue;
    raw[key.slice(PROJECT.length + 1)] = /^[[{]/.test(value) ? JSON.parse(value) : value;
  }
  return raw;
}

/** A deep copy of `raw` with the value at a dotted path replaced (undefined removes it). */
export function withValue(raw: Record<string, any>, dotted: string, value: unknown): Record<string, any> {
  const copy = structuredClone(raw);
  const keys = dotted.split(".");
  let at: any = copy;
  for (const k of keys.slice(0, -1)) at = at[k] ??= {};
  if (value === undefined) delete at[keys[keys.length - 1]];
  else at[keys[keys.length - 1]] = value;
  return copy;
}
