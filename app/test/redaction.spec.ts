import assert from "node:assert/strict";
import { REDACTED, passesLuhn, redactTag, safeHttpUrl, scrubDigitRuns, scrubText } from "../src/tracing/redaction";

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

describe("the server span's http.url and user agent", function () {
  it("records the route pattern when a route matched, whatever the path held", function () {
    assert.equal(safeHttpUrl("http://payment-service.payments/v1/payments", "/v1/payments"), "http://payment-service.payments/v1/payments");
    assert.equal(safeHttpUrl("http://10.0.3.7:8080/v1/payments?<redacted>", "/v1/payments"), "http://10.0.3.7:8080/v1/payments?<redacted>");
  });

  it("replaces each path segment holding a digit or an escape when no route matched", function () {
    assert.equal(safeHttpUrl("http://h/v1/payments/4916338506082832/8305", undefined), "http://h/?/payments/?/?");
    assert.equal(safeHttpUrl("http://h/v1/payments/4916%203385%200608%202832", undefined), "http://h/?/payments/?");
    assert.equal(safeHttpUrl("http://h/favicon.ico", undefined), "http://h/favicon.ico");
    assert.equal(safeHttpUrl("http://h", undefined), "http://h/");
  });

  it("keeps the Host header only when it is a plain name or IPv4 address", function () {
    assert.equal(safeHttpUrl("http://fraud-service.payments.svc.cluster.local/x", undefined), "http://fraud-service.payments.svc.cluster.local/x");
    assert.equal(safeHttpUrl("http://127.0.0.1:41234/x", undefined), "http://127.0.0.1:41234/x");
    for (const host of ["4916338506082832", "8305", "card-4916338506082832.example", "a b", "user:pw@h"]) {
      assert.equal(safeHttpUrl(`http://${host}/x`, undefined), "http://redacted-host/x", host);
    }
  });

  it("keeps every IPv4 address, with or without a port, and names with short digit runs", function () {
    const kept = [
      "9.9.9.9",
      "10.0.0.1",
      "255.249.199.8",
      "1.255.240.99:8080",
      "payment-service:8080",
      "fraud-service:65535",
      "node-12.payments",
      "a.b",
      "ip-10-0-3-7.ec2.internal",
    ];
    for (const host of kept) assert.equal(safeHttpUrl(`http://${host}/x`, undefined), `http://${host}/x`, host);
  });

  it("redacts a Host header that is only almost an address or a name", function () {
    const redacted = [
      "4916338506082832.10.0.0.1", // a card number before an address
      "10.0.0.1:4916338506082832", // and after it, as a port
      "payment-service:4916338506082832",
      "payment-service:123456", // a port has at most 5 digits
      "10.0.0.1:123456",
      "256.1.1.1",
      "259.1.1.1",
      "1.259.1.1",
      "24a.1.1.1",
      "1.24a.1.1",
      "1.1a1.1.1",
      "node-123.payments", // a run of 3 digits in a name
    ];
    for (const host of redacted) assert.equal(safeHttpUrl(`http://${host}/x`, undefined), "http://redacted-host/x", host);
  });

  it("redacts a URL it cannot parse", function () {
    assert.equal(safeHttpUrl("/v1/payments/4916338506082832", undefined), "[REDACTED_URL]");
    // A scheme later in the text is not the URL's start.
    assert.equal(safeHttpUrl("4916338506082832 http://h/x", undefined), "[REDACTED_URL]");
  });

  it("replaces runs of three or more digits in a user agent", function () {
    assert.equal(scrubDigitRuns("checkout/1.0 (card 4916 3385 0608 2832; cvv 8305)"), "checkout/1.0 (card ?; cvv ?)");
    assert.equal(scrubDigitRuns("curl/8.5.0"), "curl/8.5.0");
  });
});
