/**
 * Transaction ids stay whole in the traces: the card-number scrubber every tag goes through
 * leaves them as they are.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { newTransactionId } from "../src/payment-service/transaction-id";
import { TAGS } from "../src/tracing/conventions";
import { redactTag, scrubText } from "../src/tracing/redaction";

describe("transaction ids (src/payment-service/transaction-id.ts)", function () {
  const N = 20_000;

  it("are random UUIDs, all different", () => {
    const ids = Array.from({ length: N }, newTransactionId);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(ids).size, N);
  });

  it("are recorded whole as payment.transaction_id, where plain random UUIDs sometimes are not", () => {
    const scrubbed = (id: string) => redactTag(TAGS.transactionId, id) !== id;
    // The premise: about 1 in 300 random UUIDs looks like a card number to the scrubber.
    const plain = Array.from({ length: N }, () => randomUUID()).filter(scrubbed);
    assert.ok(plain.length > 0, "no random UUID out of 20,000 was scrubbed: the premise no longer holds");
    assert.match(scrubText(plain[0]), /\[REDACTED_PAN\]/);
    assert.deepEqual(Array.from({ length: N }, newTransactionId).filter(scrubbed), []);
  });
});
