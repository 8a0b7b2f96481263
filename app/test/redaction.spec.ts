import assert from "node:assert/strict";
import { REDACTED, passesLuhn, redactTag, scrubText } from "../src/tracing/redaction";

describe("tag redaction", function () {
  it("records nothing but a placeholder under sensitive key names, whatever the case", function () {
    for (const key of ["card_number", "card.number", "CardNumber", "cvv", "payment.card.cvc", "password", "user.SSN",
      "auth_token", "http.request.headers.authorization", "api_key", "client_secret", "pan"]) {
      assert.equal(redactTag(key, "anything"), REDACTED, key);
    }
  });

  it("leaves ordinary keys and values alone", function () {
    assert.equal(redactTag("payment.currency", "USD"), "USD");
    assert.equal(redactTag("payment.amount", 2_500), 2_500);
    assert.equal(redactTag("payment.transaction_id", "2924ad55-75e2-4cb6-be18-70849ddca28e"), "2924ad55-75e2-4cb6-be18-70849ddca28e");
    assert.equal(redactTag("company", "Spanner Ltd"), "Spanner Ltd");
  });

  it("scrubs card numbers and SSNs out of free text under any key", function () {
    assert.equal(redactTag("error.message", "card 4111111111111111 declined"), "card [REDACTED_PAN] declined");
    assert.equal(scrubText("pan 4111 1111 1111 1111 or 4111-1111-1111-1111"), "pan [REDACTED_PAN] or [REDACTED_PAN]");
    assert.equal(scrubText("ssn 078-05-1120."), "ssn [REDACTED_SSN].");
  });

  it("keeps digit runs that are not card numbers", function () {
    assert.equal(scrubText("order 4111111111111112"), "order 4111111111111112", "fails Luhn");
    assert.equal(scrubText("span 2043402241083618564"), "span 2043402241083618564", "20 digits");
  });

  it("redacts a card number typed as a number", function () {
    assert.equal(redactTag("note", 4111111111111111), REDACTED);
  });

  it("records booleans as strings and lists comma-separated", function () {
    assert.equal(redactTag("fraud.degraded", true), "true");
    assert.equal(redactTag("fraud.risk_factors", ["high_velocity", "unusual_amount"]), "high_velocity,unusual_amount");
    assert.equal(redactTag("absent", undefined), undefined);
  });

  it("implements the Luhn checksum", function () {
    assert.ok(passesLuhn("4539148803436467"));
    assert.ok(passesLuhn("378282246310005"));
    assert.ok(!passesLuhn("4539148803436468"));
    assert.ok(!passesLuhn("45391488x3436467"));
  });

  it("treats pan, social security and api key as sensitive however they are joined", function () {
    for (const key of ["card.pan", "pan_hash", "pan-last", "socialsecurity", "social_security", "social-security", "apikey", "api.key"]) {
      assert.equal(redactTag(key, "anything"), "[REDACTED]", key);
    }
  });

  it("keeps small numbers that happen to pass Luhn, and records nothing for null", function () {
    assert.equal(redactTag("payment.amount", 18), 18, "18 passes Luhn but is no card number");
    assert.equal(redactTag("payment.amount", 999_999_999_999), 999_999_999_999);
    assert.equal(redactTag("note", -4111111111111111), "[REDACTED]");
    assert.equal(redactTag("note", null), undefined);
  });

  it("checks Luhn only on strings of digits", function () {
    assert.equal(passesLuhn(""), false);
    // ':' is '0' + 10: read as a digit it would keep the sum a multiple of 10.
    assert.equal(passesLuhn("0:"), false);
    assert.equal(passesLuhn(":00"), false);
    assert.equal(passesLuhn("0"), true);
  });
});
