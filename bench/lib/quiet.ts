import type { TestDatabase } from "../../app/test/support/database";

/**
 * Waits until no statement runs on the bench database (other than this check) for two
 * polls in a row, at most `timeoutMs`. A load phase ends by closing its connections while
 * payments are still in flight; stopping the services then would cut them off mid-way.
 */
export async function waitForQuiet(db: TestDatabase, timeoutMs = 5_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  let quietPolls = 0;
  while (Date.now() < until) {
    const { rows } = await db.pool.query<{ active: string }>(
      `SELECT count(*)::text AS active FROM pg_stat_activity
        WHERE datname = $1 AND state NOT IN ('idle') AND pid <> pg_backend_pid()`,
      [db.name],
    );
    quietPolls = rows[0].active === "0" ? quietPolls + 1 : 0;
    if (quietPolls >= 2) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
