/** What the numbers were measured on: recorded with every result file. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SERVICE_NODE } from "../../app/test/support/services";
import { PGBENCH } from "./pgbench";

const REPO = path.resolve(__dirname, "../..");

function quiet(run: () => string): string | undefined {
  try {
    return run().trim();
  } catch {
    return undefined;
  }
}

/** Read, not required: the launcher refuses to start services once dd-trace is in the require cache. */
function packageVersion(name: string): string | undefined {
  return quiet(() => {
    const file = require.resolve(`${name}/package.json`, { paths: [path.join(REPO, "app"), REPO] });
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  });
}

export interface MachineInfo {
  readonly date: string;
  readonly hostname: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly loadAverageAtStart: number[];
  readonly serviceNode: string;
  readonly serviceNodeVersion?: string;
  readonly benchNodeVersion: string;
  readonly versions: Record<string, string | undefined>;
  readonly postgres?: string;
  readonly redis?: string;
  readonly gitCommit?: string;
  readonly gitDirty?: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const status = quiet(() => execFileSync("git", ["status", "--porcelain"], { cwd: REPO, encoding: "utf8" }));
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    serviceNode: path.relative(REPO, SERVICE_NODE) || SERVICE_NODE,
    serviceNodeVersion: quiet(() => execFileSync(SERVICE_NODE, ["--version"], { encoding: "utf8" })),
    benchNodeVersion: process.version,
    versions: {
      "dd-trace": packageVersion("dd-trace"),
      fastify: packageVersion("fastify"),
      pg: packageVersion("pg"),
      ioredis: packageVersion("ioredis"),
      pino: packageVersion("pino"),
      autocannon: packageVersion("autocannon"),
      pgbench: quiet(() => execFileSync(PGBENCH, ["--version"], { encoding: "utf8" })),
    },
    postgres: quiet(() =>
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"], { encoding: "utf8" }),
    ),
    redis: quiet(() => /redis_version:(\S+)/.exec(execFileSync("redis-cli", ["-h", "127.0.0.1", "info", "server"], { encoding: "utf8" }))?.[1] ?? ""),
    gitCommit: quiet(() => execFileSync("git", ["rev-parse", "HEAD"], { cwd: REPO, encoding: "utf8" })),
    gitDirty: status === undefined ? undefined : status.length > 0,
  };
}
