/**
 * A database of its own per test run, migrated with the app's runner, plus the few
 * queries tests need to read the ledger.
 */
import { Client, Pool } from "pg";
import { migrate } from "../../src/ledger/migrations";
import type { CustomerTier } from "../../src/tracing/conventions";

export const PG = { host: "127.0.0.1", port: 5432, user: "postgres" } as const;

/** Where a test database lives: the shared server (`PG`) unless a spec runs its own. */
export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
}

export interface TestDatabase {
  readonly name: string;
  /** The PG* variables a service needs to reach it. */
  readonly env: Record<string, string>;
  readonly pool: Pool;
  drop(): Promise<void>;
}

/** Drops and recreates `name` on `server` (the shared one by default), applies the migrations. */
export async function createTestDatabase(name: string, server: PgServer = PG): Promise<TestDatabase> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unsafe database name ${name}`);
  await admin(server, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  await migrate({ ...server, database: name });
  const pool = new Pool({ ...server, database: name, max: 4 });
  // A spec that restarts its server sees the idle connections drop: not a test failure.
  pool.on("error", () => undefined);
  return {
    name,
    env: { PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.user, PGDATABASE: name },
    pool,
    async drop() {
      await pool.end();
      await admin(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function admin<T>(server: PgServer, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ ...server, database: "postgres" });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface WalletSpec {
  readonly balance: number | bigint;
  readonly currency?: string;
  readonly tier?: CustomerTier;
  readonly country?: string;
}

let walletCount = 0;
const openingTotals = new Map<string, bigint>();

/** The sum of the opening balances of every wallet `createWallet` made, per currency. */
export function openingTotal(currency = "USD"): bigint {
  return openingTotals.get(currency) ?? 0n;
}

export async function totalBalance(pool: Pool, currency = "USD"): Promise<bigint> {
  const { rows } = await pool.query<{ total: string | null }>(
    `SELECT sum(balance)::text AS total FROM wallets WHERE currency = $1`,
    [currency],
  );
  return BigInt(rows[0].total ?? 0);
}

/** Creates a wallet for a fresh user id (so tests never share wallets) and returns the id. */
export async function createWallet(pool: Pool, label: string, spec: WalletSpec): Promise<string> {
  walletCount += 1;
  const userId = `${label}_${process.pid}_${walletCount}`;
  await pool.query(
    `INSERT INTO wallets (user_id, currency, balance, customer_tier, country) VALUES ($1, $2, $3, $4, $5)`,
    [userId, spec.currency ?? "USD", String(spec.balance), spec.tier ?? "standard", spec.country ?? "US"],
  );
  const currency = spec.currency ?? "USD";
  openingTotals.set(currency, openingTotal(currency) + BigInt(spec.balance));
  return userId;
}

export async function balanceOf(pool: Pool, userId: string, currency = "USD"): Promise<bigint> {
  const { rows } = await pool.query<{ balance: string }>(
    `SELECT balance FROM wallets WHERE user_id = $1 AND currency = $2`,
    [userId, currency],
  );
  if (!rows[0]) throw new Error(`no ${currency} wallet for ${userId}`);
  return BigInt(rows[0].balance);
}

export interface TransactionRow {
  id: string;
  idempotency_key: string;
  sender_id: string;
  receiver_id: string;
  amount: string;
  status: string;
  failure_reason: string | null;
  response_status: number;
  response_body: Record<string, unknown>;
}

/** Every transaction row that involves `userId`, oldest first. */
export async function transactionsOf(pool: Pool, userId: string): Promise<TransactionRow[]> {
  const { rows } = await pool.query<TransactionRow>(
    `SELECT id, idempotency_key, sender_id, receiver_id, amount, status, failure_reason, response_status, response_body
       FROM transactions WHERE sender_id = $1 OR receiver_id = $1 ORDER BY created_at, id`,
    [userId],
  );
  return rows;
}

export interface LedgerEntryRow {
  transaction_id: string;
  user_id: string;
  direction: "debit" | "credit";
  amount: string;
}

export async function ledgerEntriesOf(pool: Pool, userId: string): Promise<LedgerEntryRow[]> {
  const { rows } = await pool.query<LedgerEntryRow>(
    `SELECT transaction_id, user_id, direction, amount FROM ledger_entries
      WHERE transaction_id IN (SELECT transaction_id FROM ledger_entries WHERE user_id = $1)
      ORDER BY id`,
    [userId],
  );
  return rows;
}

export interface ProfileSpec {
  readonly segment: "consumer" | "small_business" | "corporate";
  readonly kycLevel: "none" | "basic" | "verified" | "enhanced";
  /** Days since the user became a customer. */
  readonly tenureDays: number;
}

/** What the ledger knows of `userId` (migrations/008_user_profiles.sql). */
export async function createProfile(pool: Pool, userId: string, spec: ProfileSpec): Promise<void> {
  await pool.query(
    `INSERT INTO user_profiles (user_id, segment, kyc_level, customer_since)
     VALUES ($1, $2, $3, now() - make_interval(days => $4) - interval '1 hour')`,
    [userId, spec.segment, spec.kycLevel, spec.tenureDays],
  );
}
