/**
 * The money invariants, checked on a whole database after a run: wallets seeded in bulk,
 * their opening balances snapshotted, and one audit that lists every violation found.
 */
import type { Pool } from "pg";
import type { CustomerTier } from "../../src/tracing/conventions";

export interface SeedWallet {
  readonly userId: string;
  readonly currency: string;
  readonly balance: number;
  readonly tier: CustomerTier;
  readonly country: string;
}

/** Inserts the wallets in one statement. */
export async function seedWallets(pool: Pool, wallets: readonly SeedWallet[]): Promise<void> {
  await pool.query(
    `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])`,
    [
      wallets.map((w) => w.userId),
      wallets.map((w) => w.currency),
      wallets.map((w) => String(w.balance)),
      wallets.map((w) => w.tier),
      wallets.map((w) => w.country),
    ],
  );
}

/** `user_id/currency` → balance. */
export type Balances = Map<string, bigint>;

export function walletKey(userId: string, currency: string): string {
  return `${userId}/${currency.trim()}`;
}

/** Every wallet's balance now. */
export async function snapshotBalances(pool: Pool): Promise<Balances> {
  const { rows } = await pool.query<{ user_id: string; currency: string; balance: string }>(
    `SELECT user_id, currency, balance::text AS balance FROM wallets`,
  );
  return new Map(rows.map((r) => [walletKey(r.user_id, r.currency), BigInt(r.balance)]));
}

/** Balances and each wallet's ledger net (credits - debits) at one moment. */
export interface LedgerSnapshot {
  readonly balances: Balances;
  readonly nets: Balances;
}

async function ledgerNets(pool: Pool): Promise<Balances> {
  const { rows } = await pool.query<{ user_id: string; currency: string; net: string }>(
    `SELECT user_id, currency, sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END)::text AS net
       FROM ledger_entries GROUP BY user_id, currency`,
  );
  return new Map(rows.map((r) => [walletKey(r.user_id, r.currency), BigInt(r.net)]));
}

/** What `auditLedger` compares against: take it before the run (with nothing in flight). */
export async function snapshotLedger(pool: Pool): Promise<LedgerSnapshot> {
  const [balances, nets] = await Promise.all([snapshotBalances(pool), ledgerNets(pool)]);
  return { balances, nets };
}

export function totalsByCurrency(balances: Balances): Map<string, bigint> {
  const totals = new Map<string, bigint>();
  for (const [key, balance] of balances) {
    const currency = key.slice(key.lastIndexOf("/") + 1);
    totals.set(currency, (totals.get(currency) ?? 0n) + balance);
  }
  return totals;
}

export interface AuditReport {
  /** One line per broken invariant instance; empty when the ledger is sound. */
  readonly violations: string[];
  readonly completed: number;
  readonly declined: number;
  readonly pending: number;
  readonly ledgerEntries: number;
  /** Sum of the amounts of completed transactions. */
  readonly moved: bigint;
}

/**
 * Checks, against the snapshot `opening`:
 * - per currency, the sum of balances is unchanged; no balance is negative; no wallet
 *   appeared or vanished;
 * - each wallet's balance moved by exactly its ledger entries since then (credits - debits);
 * - each completed transaction has exactly two ledger rows: a debit of its sender and a
 *   credit of its receiver, both of its amount and currency, and answered 201 with its id;
 * - no ledger row belongs to a declined or pending transaction; nothing is left pending.
 */
export async function auditLedger(pool: Pool, snapshot: LedgerSnapshot): Promise<AuditReport> {
  const violations: string[] = [];
  const opening = snapshot.balances;
  const now = await snapshotBalances(pool);

  const before = totalsByCurrency(opening);
  const after = totalsByCurrency(now);
  for (const currency of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(currency) ?? 0n;
    const b = after.get(currency) ?? 0n;
    if (a !== b) violations.push(`${currency}: balances sum to ${b}, opened at ${a} (${b - a > 0n ? "+" : ""}${b - a})`);
  }
  for (const key of opening.keys()) if (!now.has(key)) violations.push(`wallet ${key} vanished`);
  for (const [key, balance] of now) {
    if (!opening.has(key)) violations.push(`wallet ${key} appeared`);
    if (balance < 0n) violations.push(`wallet ${key} is negative: ${balance}`);
  }

  const nets = await ledgerNets(pool);
  for (const [key, balance] of now) {
    const expected = (opening.get(key) ?? 0n) + (nets.get(key) ?? 0n) - (snapshot.nets.get(key) ?? 0n);
    if (balance !== expected) violations.push(`wallet ${key}: balance ${balance}, ledger says ${expected}`);
  }

  const { rows: unmatched } = await pool.query<{ id: string; entries: string }>(
    `SELECT t.id, (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id)::text AS entries
       FROM transactions t
      WHERE t.status = 'completed'
        AND NOT (
          (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id) = 2
          AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id AND e.direction = 'debit'
                         AND e.user_id = t.sender_id AND e.currency = t.currency AND e.amount = t.amount)
          AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id AND e.direction = 'credit'
                         AND e.user_id = t.receiver_id AND e.currency = t.currency AND e.amount = t.amount)
          AND t.response_status = 201
          AND t.response_body ->> 'transaction_id' = t.id::text
        )`,
  );
  for (const r of unmatched) {
    violations.push(`completed transaction ${r.id}: ${r.entries} ledger rows or its answer do not match it`);
  }

  const { rows: stray } = await pool.query<{ id: string; status: string }>(
    `SELECT DISTINCT t.id, t.status FROM transactions t JOIN ledger_entries e ON e.transaction_id = t.id
      WHERE t.status <> 'completed'`,
  );
  for (const r of stray) violations.push(`${r.status} transaction ${r.id} has ledger rows`);

  const { rows: counts } = await pool.query<{
    completed: string;
    declined: string;
    pending: string;
    entries: string;
    moved: string;
  }>(
    `SELECT count(*) FILTER (WHERE status = 'completed')::text AS completed,
            count(*) FILTER (WHERE status = 'declined')::text AS declined,
            count(*) FILTER (WHERE status = 'pending')::text AS pending,
            (SELECT count(*) FROM ledger_entries)::text AS entries,
            coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)::text AS moved
       FROM transactions`,
  );
  const c = counts[0];
  if (c.pending !== "0") violations.push(`${c.pending} transaction(s) left pending`);
  return {
    violations,
    completed: Number(c.completed),
    declined: Number(c.declined),
    pending: Number(c.pending),
    ledgerEntries: Number(c.entries),
    moved: BigInt(c.moved),
  };
}

/** Violations as an assertion message: the first `max` lines and how many more. */
export function describeViolations(violations: readonly string[], max = 25): string {
  const shown = violations.slice(0, max).map((v) => `  - ${v}`);
  if (violations.length > max) shown.push(`  … ${violations.length - max} more`);
  return `${violations.length} violation(s):\n${shown.join("\n")}`;
}

/** Row count of every table in the public schema. */
export async function tableRowCounts(pool: Pool): Promise<Record<string, number>> {
  const { rows: tables } = await pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${name.replace(/"/g, '""')}"`);
    counts[name] = Number(rows[0].n);
  }
  return counts;
}

/** The transaction row stored for each key: what a replay must answer. */
export async function transactionsByKey(
  pool: Pool,
): Promise<Map<string, { id: string; status: string; responseStatus: number; responseBody: Record<string, unknown> }>> {
  const { rows } = await pool.query<{
    idempotency_key: string;
    id: string;
    status: string;
    response_status: number;
    response_body: Record<string, unknown>;
  }>(`SELECT idempotency_key, id, status, response_status, response_body FROM transactions`);
  return new Map(
    rows.map((r) => [
      r.idempotency_key,
      { id: r.id, status: r.status, responseStatus: r.response_status, responseBody: r.response_body },
    ]),
  );
}
