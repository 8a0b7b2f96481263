/**
 * Keeps card data, credentials and identity numbers out of spans and logs. Every tag the
 * app sets goes through `redactTag` (see `setTags` in spans.ts).
 */

export const REDACTED = "[REDACTED]";

/** Key names whose values are never recorded, whatever the value looks like. */
const SENSITIVE_KEY =
  /card[_.-]?number|(^|[_.-])pan($|[_.-])|cvv|cvc|password|passwd|passphrase|secret|ssn|social[_.-]?security|token|authorization|api[_.-]?key|cookie/i;

/** 13 to 19 digits, optionally grouped by spaces or dashes: the shape of a card number. */
const PAN_CANDIDATE = /(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])/g;

/** US social security numbers written with dashes. */
const SSN = /(?<![\d])\d{3}-\d{2}-\d{4}(?![\d])/g;

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key);
}

/** The Luhn checksum every payment card number satisfies. */
export function passesLuhn(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Replaces anything that looks like a card number (Luhn-valid) or an SSN in free text. */
export function scrubText(text: string): string {
  return text
    .replace(PAN_CANDIDATE, (match) => (passesLuhn(match.replace(/[ -]/g, "")) ? "[REDACTED_PAN]" : match))
    .replace(SSN, "[REDACTED_SSN]");
}

export type TagValue = string | number | boolean | readonly string[] | null | undefined;
export type RecordedTagValue = string | number;

/**
 * The value to record for a tag, or undefined to record nothing. Booleans become "true" /
 * "false" (dd-trace would turn them into 1 / 0 metrics), lists become comma-separated.
 */
export function redactTag(key: string, value: TagValue): RecordedTagValue | undefined {
  if (value === null || value === undefined) return undefined;
  if (isSensitiveKey(key)) return REDACTED;
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    // A long integer can be a card number typed as a number.
    return Number.isSafeInteger(value) && Math.abs(value) >= 1e12 && passesLuhn(String(Math.abs(value)))
      ? REDACTED
      : value;
  }
  const text = typeof value === "string" ? value : value.join(",");
  return scrubText(text);
}
