/**
 * The ceiling: pgbench running the payment's own SQL (bench/ledger-transfer.pgbench.sql)
 * on the bench database, at the load generator's concurrency, for the same duration.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PG } from "../../app/test/support/database";
import { summarize, type PhaseResult } from "./load";

export const PGBENCH = "/usr/bin/pgbench";
export const PGBENCH_SCRIPT = path.join(__dirname, "..", "ledger-transfer.pgbench.sql");

export interface PgbenchRun {
  readonly database: string;
  readonly clients: number;
  readonly threads: number;
  readonly durationSec: number;
  readonly wallets: number;
}

export function pgbenchArgs(run: PgbenchRun, logPrefix: string): string[] {
  return [
    "--no-vacuum",
    "--protocol=extended",
    `--client=${run.clients}`,
    `--jobs=${run.threads}`,
    `--time=${run.durationSec}`,
    `--define=nwallets=${run.wallets}`,
    `--file=${PGBENCH_SCRIPT}`,
    "--log",
    `--log-prefix=${logPrefix}`,
    `--host=${PG.host}`,
    `--port=${PG.port}`,
    `--username=${PG.user}`,
    run.database,
  ];
}

/** Runs pgbench; a transaction is a whole payment, so its latency compares with a payment's. */
export async function runPgbench(run: PgbenchRun): Promise<PhaseResult & { command: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "payments-pgbench-"));
  const prefix = path.join(dir, "tx");
  const args = pgbenchArgs(run, prefix);
  try {
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>((resolve) => {
      execFile(
        PGBENCH,
        args,
        { timeout: (run.durationSec + 30) * 1000, maxBuffer: 16 * 1024 * 1024 },
        (error, out, err) => resolve({ stdout: out, stderr: err, code: error ? Number(error.code ?? 1) : 0 }),
      );
    });
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? Number.NaN);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? Number.NaN);
    if (code !== 0 || !Number.isFinite(processed) || !Number.isFinite(tps)) {
      throw new Error(`pgbench failed (exit ${code}):\n${stdout}\n${stderr}`.trim());
    }
    // Per-transaction log lines: client_id transaction_no time_us script_no epoch epoch_us
    const latencies: number[] = [];
    for (const file of readdirSync(dir)) {
      for (const line of readFileSync(path.join(dir, file), "utf8").split("\n")) {
        const fields = line.split(" ");
        if (fields.length >= 3 && /^\d+$/.test(fields[2])) latencies.push(Number(fields[2]) / 1000);
      }
    }
    return {
      command: `pgbench ${args.map((a) => (a.startsWith("--log-prefix") ? "--log-prefix=<tmp>" : a)).join(" ")}`,
      durationSec: run.durationSec,
      requests: processed + failed,
      ok2xx: processed,
      non2xx: failed,
      errors: 0,
      timeouts: 0,
      statusCodes: {},
      throughput: tps,
      latencyMs: summarize(latencies),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
