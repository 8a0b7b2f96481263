/**
 * The original design's annotate_user_span, from what the ledger knows of the paying user
 * (user_profiles): segment, KYC level and tenure on payment.process_payment.
 */
import assert from "node:assert/strict";
import { DETAIL_TAGS, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { createProfile, createWallet } from "./support/database";
import { e2e, postPayment, type E2E } from "./support/e2e";
import { onlySpan, tagged, waitForTrace } from "./support/traces";

describe("user annotations on the payment span", function () {
  let env: E2E;

  before(async function () {
    this.timeout(120_000);
    env = await e2e();
  });

  async function pay(sender: string) {
    const receiver = await createWallet(env.db.pool, "annotated_to", { balance: 0 });
    const response = await postPayment(env.payment, {
      sender_id: sender,
      receiver_id: receiver,
      amount: 250,
      currency: "USD",
      payment_method_type: "wallet",
    });
    assert.equal(response.status, 201, JSON.stringify(response.body));
    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment, SERVICES.fraud]);
    return onlySpan(trace, SPANS.processPayment, SERVICES.payment);
  }

  it("tags business.user_segment, business.kyc_level and business.user_tenure_days from the sender's profile", async function () {
    const sender = await createWallet(env.db.pool, "annotated", { balance: 10_000 });
    await createProfile(env.db.pool, sender, { segment: "small_business", kycLevel: "enhanced", tenureDays: 412 });
    // The receiver's profile must not be what is annotated.
    const span = await pay(sender);
    assert.equal(span.meta[DETAIL_TAGS.userSegment], "small_business");
    assert.equal(span.meta[DETAIL_TAGS.kycLevel], "enhanced");
    assert.equal(span.metrics[DETAIL_TAGS.userTenureDays], 412);
  });

  it("leaves them out for a user the ledger has no profile of, and still pays", async function () {
    const sender = await createWallet(env.db.pool, "unprofiled", { balance: 10_000 });
    const span = await pay(sender);
    for (const key of [DETAIL_TAGS.userSegment, DETAIL_TAGS.kycLevel]) assert.equal(span.meta[key], undefined, key);
    assert.equal(span.metrics[DETAIL_TAGS.userTenureDays], undefined);
  });
});
