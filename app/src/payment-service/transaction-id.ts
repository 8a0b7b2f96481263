import { randomUUID } from "node:crypto";
import { scrubText } from "../tracing/redaction";

/**
 * A new transaction id: a random UUID that the tags' card-number scrubber records whole.
 * About one random UUID in 300 holds 13 to 19 digits in a row (dashes between them allowed)
 * that pass the Luhn check; `redactTag` records such a value with `[REDACTED_PAN]` in it,
 * and that payment could not be found by its id in the traces (payment.transaction_id,
 * fraud.transaction_id, the post-processing spans). Those are drawn again.
 */
export function newTransactionId(): string {
  for (;;) {
    const id = randomUUID();
    if (scrubText(id) === id) return id;
  }
}
