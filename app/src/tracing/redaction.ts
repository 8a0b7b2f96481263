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

/** 3 or more digits, possibly split by spaces, dashes or %20: a card number, a CVV, an account number. */
const DIGIT_RUN = /\d(?:(?:[ -]|%20|\+)?\d){2,}/g;

/** Replaces every run of 3 or more digits by `?`: for free text a client controls (a User-Agent). */
export function scrubDigitRuns(text: string): string {
  return text.replace(DIGIT_RUN, "?");
}

/** An IPv4 address, or a DNS name whose labels start with a letter, with an optional port. */
const IPV4_HOST = /^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?::\d{1,5})?$/;
const NAME_HOST = /^([a-z](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)*)(?::\d{1,5})?$/i;

/** A Host header safe to record: an address, or a name with no run of 3 or more digits. */
function isPlainHost(host: string): boolean {
  const name = NAME_HOST.exec(host)?.[1];
  return IPV4_HOST.test(host) || (name !== undefined && !/\d{3}/.test(name));
}

/**
 * The `http.url` to record for a server request: the route pattern when a route matched
 * (`/v1/payments`), otherwise the path with every segment that holds a digit replaced by
 * `?` (what the Agent's remove_paths_with_digits does); the Host header only when it is a
 * plain host name or address; the query string as the tracer already obfuscated it.
 * `url` is the tracer's value, `scheme://host/path?query`.
 */
export function safeHttpUrl(url: string, route: string | undefined): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(url);
  if (!match) return "[REDACTED_URL]";
  const [, scheme, host, path, query = ""] = match;
  const safeHost = isPlainHost(host) ? host : "redacted-host";
  const safePath =
    route ?? (path.split("/").map((segment) => (/\d/.test(segment) || /%/.test(segment) ? "?" : segment)).join("/") || "/");
  return `${scheme}${safeHost}${safePath}${query}`;
}
