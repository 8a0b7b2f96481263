import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MAX_AMOUNT, idempotencyKeySchema, paymentRequestSchema, requestHash } from "../src/payment-service/request";

/** A valid wallet payment; each case changes one field. */
const valid = {
  sender_id: "alice_01",
  receiver_id: "bob-02",
  amount: 2_500,
  currency: "USD",
  payment_method_type: "wallet",
} as const;

const card = { number: "4111111111111111", cvv: "123", expiry: "12/29" };

/** The paths and messages of what the schema refuses in `body`, or [] if it accepts it. */
function refusals(body: unknown): string[] {
  const result = paymentRequestSchema.safeParse(body);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("POST /v1/payments request validation", function () {
  it("accepts a wallet payment and a card payment with every optional field", function () {
    assert.deepEqual(refusals(valid), []);
    assert.deepEqual(
      refusals({
        ...valid,
        payment_method_type: "card",
        card,
        device: { id: "d".repeat(128), fingerprint: "f".repeat(512) },
        customer_tier: "premium",
        sender_country: "US",
        receiver_country: "GB",
        amount: MAX_AMOUNT,
      }),
      [],
    );
    assert.deepEqual(refusals({ ...valid, sender_id: "a", receiver_id: "B".repeat(64) }), []);
  });

  const refused: { change: Record<string, unknown>; refusal: string }[] = [
    { change: { sender_id: "" }, refusal: "sender_id: must be 1-64 letters, digits, '_' or '-'" },
    { change: { sender_id: "a".repeat(65) }, refusal: "sender_id: must be 1-64 letters, digits, '_' or '-'" },
    { change: { sender_id: "alice 01" }, refusal: "sender_id: must be 1-64 letters, digits, '_' or '-'" },
    { change: { sender_id: "x;alice" }, refusal: "sender_id: must be 1-64 letters, digits, '_' or '-'" },
    { change: { receiver_id: "bob!" }, refusal: "receiver_id: must be 1-64 letters, digits, '_' or '-'" },
    { change: { receiver_id: "alice_01" }, refusal: "receiver_id: must differ from sender_id" },
    { change: { amount: 0 }, refusal: "amount: " },
    { change: { amount: -5 }, refusal: "amount: " },
    { change: { amount: 10.5 }, refusal: "amount: " },
    { change: { amount: MAX_AMOUNT + 1 }, refusal: "amount: " },
    { change: { amount: "2500" }, refusal: "amount: " },
    { change: { currency: "XAU" }, refusal: "currency: " },
    { change: { payment_method_type: "cash" }, refusal: "payment_method_type: " },
    { change: { payment_method_type: "card" }, refusal: "card: is required when payment_method_type is card" },
    { change: { payment_method_type: "card", card: { ...card, number: "41111111111" } }, refusal: "card.number: must be 12-19 digits" },
    { change: { payment_method_type: "card", card: { ...card, number: "4".repeat(20) } }, refusal: "card.number: must be 12-19 digits" },
    { change: { payment_method_type: "card", card: { ...card, number: "4111 1111 1111 1111" } }, refusal: "card.number: must be 12-19 digits" },
    { change: { payment_method_type: "card", card: { ...card, cvv: "12" } }, refusal: "card.cvv: must be 3 or 4 digits" },
    { change: { payment_method_type: "card", card: { ...card, cvv: "12345" } }, refusal: "card.cvv: must be 3 or 4 digits" },
    { change: { payment_method_type: "card", card: { ...card, expiry: "13/29" } }, refusal: "card.expiry: must be MM/YY" },
    { change: { payment_method_type: "card", card: { ...card, expiry: "00/29" } }, refusal: "card.expiry: must be MM/YY" },
    { change: { payment_method_type: "card", card: { ...card, expiry: "12/2029" } }, refusal: "card.expiry: must be MM/YY" },
    { change: { payment_method_type: "card", card: { ...card, expiry: "x12/29" } }, refusal: "card.expiry: must be MM/YY" },
    { change: { payment_method_type: "card", card: { ...card, holder: "A" } }, refusal: "card: " },
    { change: { device: { id: "", fingerprint: "f" } }, refusal: "device.id: " },
    { change: { device: { id: "d".repeat(129), fingerprint: "f" } }, refusal: "device.id: " },
    { change: { device: { id: "d", fingerprint: "" } }, refusal: "device.fingerprint: " },
    { change: { device: { id: "d", fingerprint: "f".repeat(513) } }, refusal: "device.fingerprint: " },
    { change: { customer_tier: "gold" }, refusal: "customer_tier: " },
    { change: { sender_country: "us" }, refusal: "sender_country: must be an ISO 3166-1 alpha-2 code" },
    { change: { receiver_country: "GBR" }, refusal: "receiver_country: must be an ISO 3166-1 alpha-2 code" },
    { change: { receiver_country: "G" }, refusal: "receiver_country: must be an ISO 3166-1 alpha-2 code" },
    { change: { note: "hi" }, refusal: ": " },
  ];
  for (const { change, refusal } of refused) {
    it(`refuses ${JSON.stringify(change)}`, function () {
      const found = refusals({ ...valid, ...change });
      assert.ok(
        found.some((r) => r.startsWith(refusal)),
        `expected a refusal starting with ${JSON.stringify(refusal)}, got ${JSON.stringify(found)}`,
      );
    });
  }

  it("takes idempotency keys of 8-255 printable ASCII characters without spaces", function () {
    for (const key of ["abcdefgh", "k".repeat(255), "!~order-2024/07#1"]) assert.equal(idempotencyKeySchema.safeParse(key).success, true, key);
    for (const key of ["abcdefg", "k".repeat(256), "order 2024-07-1", "order-2024-07-\u00e9", "order-2024\t07"]) {
      assert.equal(idempotencyKeySchema.safeParse(key).success, false, key);
    }
    assert.equal(idempotencyKeySchema.safeParse("short").error?.issues[0].message, "must be 8-255 printable ASCII characters without spaces");
  });
});

describe("requestHash", function () {
  const cardPayment = paymentRequestSchema.parse({ ...valid, payment_method_type: "card", card });

  it("is the SHA-256 hex of the request, card reduced to its last four digits and expiry", function () {
    // Written out: sha256 of the JSON of the request in field order, as replay compares it.
    const expected = createHash("sha256")
      .update('{"sender_id":"alice_01","receiver_id":"bob-02","amount":2500,"currency":"USD","payment_method_type":"card","card":{"last4":"1111","expiry":"12/29"}}')
      .digest("hex");
    assert.equal(requestHash(cardPayment), expected);
    assert.match(requestHash(paymentRequestSchema.parse(valid)), /^[0-9a-f]{64}$/);
  });

  it("ignores the PAN's other digits and the CVV, and changes with anything else", function () {
    const base = requestHash(cardPayment);
    assert.equal(requestHash({ ...cardPayment, card: { ...card, number: "5500000000001111", cvv: "999" } }), base);
    assert.notEqual(requestHash({ ...cardPayment, card: { ...card, number: "4111111111112222" } }), base);
    assert.notEqual(requestHash({ ...cardPayment, card: { ...card, expiry: "11/29" } }), base);
    assert.notEqual(requestHash({ ...cardPayment, amount: 2_501 }), base);
    assert.notEqual(requestHash(paymentRequestSchema.parse(valid)), requestHash(paymentRequestSchema.parse({ ...valid, receiver_id: "carol" })));
  });
});
