/**
 * Demo wallets, with their owners' profiles (migrations/008_user_profiles.sql), for a local
 * or staging database. Existing wallets and profiles are left untouched, so running it twice
 * creates no money. Connection from the PG* variables.
 *
 *   npm run -w app seed
 */
import { Client, type ClientConfig } from "pg";
import type { CustomerTier } from "../tracing/conventions";

/** What the ledger knows of a user beyond their wallets: the payment span's business.* annotations. */
export interface ProfileSeed {
  readonly segment: "consumer" | "small_business" | "corporate";
  readonly kycLevel: "none" | "basic" | "verified" | "enhanced";
  /** Whole days since the user became a customer (business.user_tenure_days): customer_since is that many times 24 h ago. */
  readonly tenureDays: number;
}

export interface WalletSeed {
  readonly userId: string;
  readonly currency: string;
  /** Minor units. */
  readonly balance: number;
  readonly customerTier: CustomerTier;
  readonly country: string;
  /** The owner's profile; none: their payments carry no business.user_* tags. */
  readonly profile?: ProfileSeed;
}

export const DEMO_WALLETS: readonly WalletSeed[] = [
  { userId: "alice", currency: "USD", balance: 500_000, customerTier: "standard", country: "US", profile: { segment: "consumer", kycLevel: "verified", tenureDays: 420 } },
  { userId: "bob", currency: "USD", balance: 250_000, customerTier: "premium", country: "US", profile: { segment: "small_business", kycLevel: "enhanced", tenureDays: 1_310 } },
  { userId: "carol", currency: "USD", balance: 10_000_000, customerTier: "enterprise", country: "GB", profile: { segment: "corporate", kycLevel: "enhanced", tenureDays: 2_005 } },
  { userId: "dave", currency: "EUR", balance: 300_000, customerTier: "standard", country: "DE", profile: { segment: "consumer", kycLevel: "basic", tenureDays: 12 } },
  { userId: "erin", currency: "EUR", balance: 300_000, customerTier: "premium", country: "FR", profile: { segment: "consumer", kycLevel: "none", tenureDays: 0 } },
];

export interface SeedResult {
  /** Wallets inserted (those already there are kept as they are). */
  readonly wallets: number;
  /** Profiles inserted (a user's existing profile is kept as it is). */
  readonly profiles: number;
}

/**
 * Inserts the wallets and their owners' profiles in one transaction, one statement per
 * table whatever the number of wallets. A user with wallets in several currencies gets the
 * first profile given for them.
 */
export async function seedWallets(wallets: readonly WalletSeed[], config: ClientConfig = {}): Promise<SeedResult> {
  const profiles = new Map<string, ProfileSeed>();
  for (const w of wallets) {
    if (w.profile && !profiles.has(w.userId)) profiles.set(w.userId, w.profile);
  }
  for (const [userId, p] of profiles) {
    if (!Number.isInteger(p.tenureDays) || p.tenureDays < 0) {
      throw new Error(`profile of ${userId}: tenureDays must be a whole number of days ≥ 0, got ${p.tenureDays}`);
    }
  }
  const client = new Client(config);
  await client.connect();
  try {
    await client.query("BEGIN");
    const walletRows = await client.query(
      `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
       ON CONFLICT (user_id, currency) DO NOTHING`,
      [
        wallets.map((w) => w.userId),
        wallets.map((w) => w.currency),
        wallets.map((w) => String(w.balance)),
        wallets.map((w) => w.customerTier),
        wallets.map((w) => w.country),
      ],
    );
    const entries = [...profiles.entries()];
    const profileRows = await client.query(
      `INSERT INTO user_profiles (user_id, segment, kyc_level, customer_since)
       SELECT user_id, segment, kyc_level, now() - make_interval(secs => tenure_days * 86400)
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS p(user_id, segment, kyc_level, tenure_days)
       ON CONFLICT (user_id) DO NOTHING`,
      [entries.map(([id]) => id), entries.map(([, p]) => p.segment), entries.map(([, p]) => p.kycLevel), entries.map(([, p]) => p.tenureDays)],
    );
    await client.query("COMMIT");
    return { wallets: walletRows.rowCount ?? 0, profiles: profileRows.rowCount ?? 0 };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

if (require.main === module) {
  seedWallets(DEMO_WALLETS).then(
    (created) => process.stdout.write(`${JSON.stringify({ level: "info", msg: "wallets seeded", created: created.wallets, profiles: created.profiles })}\n`),
    (error: Error) => {
      process.stderr.write(`${JSON.stringify({ level: "fatal", msg: error.message })}\n`);
      process.exit(1);
    },
  );
}
