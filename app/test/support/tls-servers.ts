/**
 * PostgreSQL and Redis of a run's own, wired as prod wires them: TLS with `verify-full` to
 * the ledger, `rediss://` with an AUTH token to Redis, against a CA and server certificates
 * made here with openssl. For comparisons with TLS off, the same PostgreSQL also accepts
 * cleartext (trust on 127.0.0.1) and `plainRedis` starts a second redis-server with the same
 * AUTH token and no TLS. Torn down by `destroy()` (or at exit, by the private servers).
 */
import { Client, type Pool } from "pg";
import { CertificateFactory, type CertificateAuthority } from "./certificates";
import { PrivatePostgres, PrivateRedis, serverOwner } from "./private-servers";

/** The AUTH token of both redis-servers (the program renders it from the secret payments-apm:redisAuthToken). */
const TLS_REDIS_PASSWORD = "redis-auth-token-for-tests-0123456789";

export class TlsServers {
  private constructor(
    readonly pg: PrivatePostgres,
    readonly redis: PrivateRedis,
    readonly plainRedis: PrivateRedis | undefined,
    readonly ca: CertificateAuthority,
  ) {}

  /** `maxConnections`: PostgreSQL's max_connections (many service pairs at once need more than 100). */
  static async start(options: { plainRedis?: boolean; maxConnections?: number } = {}): Promise<TlsServers> {
    const certs = new CertificateFactory();
    const ca = certs.ca("payments-test-ca");
    const server = certs.server(ca, ["127.0.0.1"], serverOwner());
    const pg = await PrivatePostgres.start();
    const started: Array<{ destroy(): Promise<void> }> = [pg];
    try {
      if (options.maxConnections) await adminQuery(pg, `ALTER SYSTEM SET max_connections = ${Number(options.maxConnections)}`);
      await pg.useTls(server); // a restart: the setting above applies from here
      const redis = await PrivateRedis.start({ tls: { ...server, caFile: ca.certFile }, password: TLS_REDIS_PASSWORD });
      started.push(redis);
      const plain = options.plainRedis ? await PrivateRedis.start({ password: TLS_REDIS_PASSWORD }) : undefined;
      return new TlsServers(pg, redis, plain, ca);
    } catch (error) {
      await Promise.all(started.map((s) => s.destroy().catch(() => undefined)));
      throw error;
    }
  }

  /** PG* overrides for a database on this server: verify-full against the test CA, or cleartext. */
  pgEnv(tls = true): Record<string, string> {
    return tls ? { PGSSLMODE: "verify-full", PGSSLROOTCERT: this.ca.certFile } : { PGSSLMODE: "disable" };
  }

  /** fraud-service's Redis variables: rediss:// with the CA and the token, or the plain server with the same token. */
  redisEnv(tls = true): Record<string, string> {
    if (tls) return { REDIS_URL: this.redis.url, REDIS_TLS_CA_FILE: this.ca.certFile, REDIS_PASSWORD: TLS_REDIS_PASSWORD };
    if (!this.plainRedis) throw new Error("TlsServers started without plainRedis");
    return { REDIS_URL: this.plainRedis.url, REDIS_PASSWORD: TLS_REDIS_PASSWORD };
  }

  async destroy(): Promise<void> {
    await Promise.all([this.redis.destroy(), this.plainRedis?.destroy(), this.pg.destroy()]);
  }
}

/** Whether `applicationName`'s connections to `database` are encrypted (pg_stat_ssl): [true] when all are. */
export async function sslConnections(pool: Pool, applicationName: string, database: string): Promise<boolean[]> {
  const { rows } = await pool.query<{ ssl: boolean }>(
    `SELECT DISTINCT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1 AND a.datname = $2`,
    [applicationName, database],
  );
  return rows.map((r) => r.ssl);
}

async function adminQuery(pg: PrivatePostgres, sql: string): Promise<void> {
  const client = new Client({ ...pg.server, database: "postgres" });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
