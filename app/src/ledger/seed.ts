/**
 * Demo wallets for a local or staging database. Existing wallets are left untouched, so
 * running it twice creates no money. Connection from the PG* variables.
 *
 *   npm run -w app seed
 */
import { Client, type ClientConfig } from "pg";
import type { CustomerTier } from "../tracing/conventions";

export interface WalletSeed {
  readonly userId: string;
  readonly currency: string;
  /** Minor units. */
  readonly balance: number;
  readonly customerTier: CustomerTier;
  readonly country: string;
}

export const DEMO_WALLETS: readonly WalletSeed[] = [
  { userId: "alice", currency: "USD", balance: 500_000, customerTier: "standard", country: "US" },
  { userId: "bob", currency: "USD", balance: 250_000, customerTier: "premium", country: "US" },
  { userId: "carol", currency: "USD", balance: 10_000_000, customerTier: "enterprise", country: "GB" },
  { userId: "dave", currency: "EUR", balance: 300_000, customerTier: "standard", country: "DE" },
  { userId: "erin", currency: "EUR", balance: 300_000, customerTier: "premium", country: "FR" },
];

export async function seedWallets(wallets: readonly WalletSeed[], config: ClientConfig = {}): Promise<number> {
  const client = new Client(config);
  await client.connect();
  try {
    let created = 0;
    for (const w of wallets) {
      const result = await client.query(
        `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, currency) DO NOTHING`,
        [w.userId, w.currency, w.balance, w.customerTier, w.country],
      );
      created += result.rowCount ?? 0;
    }
    return created;
  } finally {
    await client.end();
  }
}

if (require.main === module) {
  seedWallets(DEMO_WALLETS).then(
    (created) => process.stdout.write(`${JSON.stringify({ level: "info", msg: "wallets seeded", created })}\n`),
    (error: Error) => {
      process.stderr.write(`${JSON.stringify({ level: "fatal", msg: error.message })}\n`);
      process.exit(1);
    },
  );
}
