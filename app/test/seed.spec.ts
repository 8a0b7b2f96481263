/**
 * `npm run -w app seed` (src/ledger/seed.ts): the demo wallets and their owners' profiles,
 * which payment-service reads for the payment span's business.user_* tags.
 */
import assert from "node:assert/strict";
import { DEMO_WALLETS, seedWallets, type WalletSeed } from "../src/ledger/seed";
import { createTestDatabase, type TestDatabase } from "./support/database";

describe("ledger seed (src/ledger/seed.ts)", function () {
  let db: TestDatabase;
  let config: { host: string; port: number; user: string; database: string };

  /**
   * A wallet and its owner's profile as payment-service reads them (store.ts loadWallets,
   * which cannot be imported here: it loads the tracer), tenure in whole days.
   */
  async function walletOf(userId: string) {
    const { rows } = await db.pool.query<{ balance: string; customer_tier: string; segment: string | null; kyc_level: string | null; tenure_days: number | null }>(
      `SELECT w.balance::text, w.customer_tier, p.segment, p.kyc_level,
              floor(extract(epoch FROM now() - p.customer_since) / 86400)::int AS tenure_days
         FROM wallets w LEFT JOIN user_profiles p ON p.user_id = w.user_id WHERE w.user_id = $1`,
      [userId],
    );
    return rows[0];
  }

  before(async function () {
    this.timeout(60_000);
    db = await createTestDatabase(`payments_seed_${process.pid}`);
    config = { host: db.env.PGHOST, port: Number(db.env.PGPORT), user: db.env.PGUSER, database: db.name };
  });
  after(async () => {
    await db?.drop();
  });

  it("seeds every demo wallet with its owner's profile, as payment-service reads them", async () => {
    assert.deepEqual(await seedWallets(DEMO_WALLETS, config), { wallets: DEMO_WALLETS.length, profiles: DEMO_WALLETS.length });
    for (const seed of DEMO_WALLETS) {
      assert.deepEqual(await walletOf(seed.userId), {
        balance: String(seed.balance),
        customer_tier: seed.customerTier,
        segment: seed.profile!.segment,
        kyc_level: seed.profile!.kycLevel,
        tenure_days: seed.profile!.tenureDays,
      });
    }
    // Not all alike: the demo's spans show several segments and KYC levels.
    assert.ok(new Set(DEMO_WALLETS.map((w) => w.profile!.segment)).size >= 3);
    assert.ok(new Set(DEMO_WALLETS.map((w) => w.profile!.kycLevel)).size >= 3);
  });

  it("run again, creates no money and changes no profile", async () => {
    const before = await db.pool.query(`SELECT user_id, balance::text, customer_tier FROM wallets ORDER BY 1`);
    const profiles = await db.pool.query(`SELECT user_id, segment, kyc_level, customer_since FROM user_profiles ORDER BY 1`);
    const changed = DEMO_WALLETS.map((w) => ({ ...w, balance: w.balance * 10, profile: { segment: "corporate", kycLevel: "none", tenureDays: 1 } }) as WalletSeed);
    assert.deepEqual(await seedWallets(changed, config), { wallets: 0, profiles: 0 });
    assert.deepEqual((await db.pool.query(`SELECT user_id, balance::text, customer_tier FROM wallets ORDER BY 1`)).rows, before.rows);
    assert.deepEqual((await db.pool.query(`SELECT user_id, segment, kyc_level, customer_since FROM user_profiles ORDER BY 1`)).rows, profiles.rows);
  });

  it("leaves a wallet without a profile unannotated, and refuses a negative tenure writing nothing", async () => {
    const created = await seedWallets([{ userId: "seed_no_profile", currency: "USD", balance: 1, customerTier: "standard", country: "US" }], config);
    assert.deepEqual(created, { wallets: 1, profiles: 0 });
    assert.deepEqual(await walletOf("seed_no_profile"), { balance: "1", customer_tier: "standard", segment: null, kyc_level: null, tenure_days: null });

    const bad: WalletSeed = { userId: "seed_bad", currency: "USD", balance: 1, customerTier: "standard", country: "US", profile: { segment: "consumer", kycLevel: "basic", tenureDays: -3 } };
    await assert.rejects(seedWallets([bad], config), /profile of seed_bad: tenureDays must be a whole number of days ≥ 0, got -3/);
    const { rows } = await db.pool.query(`SELECT 1 FROM wallets WHERE user_id = 'seed_bad' UNION ALL SELECT 1 FROM user_profiles WHERE user_id = 'seed_bad'`);
    assert.equal(rows.length, 0);
  });
});
