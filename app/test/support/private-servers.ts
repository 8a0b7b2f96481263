/**
 * Servers of a spec's own, on 127.0.0.1 and a free port, for faults that must not touch the
 * machine's shared PostgreSQL and Redis: a PostgreSQL cluster in a temporary directory that
 * can really be stopped (fast or immediate, i.e. crashed) and started again, and a
 * redis-server that can be killed and restarted on the same port.
 *
 * Both are torn down by `destroy()` (call it from an `after` hook) and, should the test
 * process exit without it, by an exit handler.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { PgServer } from "./database";

const run = promisify(execFile);

/** A loopback port nothing listens on (free when this resolves). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const exitHandlers = new Set<() => void>();
process.once("exit", () => {
  for (const handler of exitHandlers) {
    try {
      handler();
    } catch {
      // best effort while exiting
    }
  }
});

// ---------------------------------------------------------------------------------------
// PostgreSQL

/** The directory of initdb / pg_ctl: PG_BIN_DIR, else the newest /usr/lib/postgresql/<major>/bin. */
function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => existsSync(path.join(root, d, "bin/initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!majors.length) throw new Error(`no PostgreSQL server binaries under ${root}; set PG_BIN_DIR`);
  return path.join(root, majors[0], "bin");
}

/** initdb refuses to run as root: as root, run the server as the `postgres` user. */
function runAs(): { prefix: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { prefix: ["runuser", "-u", "postgres", "--"], uid, gid };
}

export type StopMode = "fast" | "immediate";

/** The uid/gid the private servers run as (root runs them as `postgres`), for files they must own. */
export function serverOwner(): { uid: number; gid: number } | undefined {
  const user = runAs();
  return user.uid !== undefined && user.gid !== undefined ? { uid: user.uid, gid: user.gid } : undefined;
}

export class PrivatePostgres {
  readonly server: PgServer;
  private readonly bin: string;
  private readonly prefix: string[];
  private destroyed = false;
  /** Server certificate and key files while TLS is on (`-c ssl=on`). */
  private tls: { certFile: string; keyFile: string } | undefined;
  private readonly onExit = () => this.destroySync();

  private constructor(
    private readonly dir: string,
    port: number,
    user: ReturnType<typeof runAs>,
  ) {
    this.server = { host: "127.0.0.1", port, user: "postgres" };
    this.bin = postgresBinDir();
    this.prefix = user.prefix;
  }

  /** initdb in a temporary directory, then start on a free port. */
  static async start(): Promise<PrivatePostgres> {
    const bin = postgresBinDir();
    const user = runAs();
    const dir = mkdtempSync(path.join(os.tmpdir(), "payments-pg-"));
    if (user.uid !== undefined && user.gid !== undefined) chownSync(dir, user.uid, user.gid);
    const instance = new PrivatePostgres(dir, await freePort(), user);
    exitHandlers.add(instance.onExit);
    try {
      await instance.exec(path.join(bin, "initdb"), [
        "-D",
        instance.dataDir,
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
      ]);
      await instance.startServer();
    } catch (error) {
      await instance.destroy();
      throw error;
    }
    return instance;
  }

  private get dataDir(): string {
    return path.join(this.dir, "data");
  }

  /** Starts the stopped server on its port; resolves once it accepts connections. */
  async startServer(): Promise<void> {
    const options = [
      `-p ${this.server.port}`,
      `-k ${this.dir}`,
      "-c listen_addresses=127.0.0.1",
      // Tests only: skip fsync (a killed server loses nothing, the OS still has the pages),
      // but keep synchronous_commit on, so a commit is acknowledged only once it is in the WAL.
      "-c fsync=off",
      "-c full_page_writes=off",
      ...(this.tls ? ["-c ssl=on", `-c ssl_cert_file=${this.tls.certFile}`, `-c ssl_key_file=${this.tls.keyFile}`] : []),
    ].join(" ");
    await this.exec(path.join(this.bin, "pg_ctl"), [
      "-D",
      this.dataDir,
      "-l",
      path.join(this.dir, "postgres.log"),
      "-w",
      "-t",
      "60",
      "-o",
      options,
      "start",
    ]);
  }

  /**
   * `fast`: the server ends every session (in-flight transactions roll back) and shuts
   * down cleanly. `immediate`: it quits at once, as a crash would, and recovers from the
   * WAL on the next start. Resolves once the server is gone.
   */
  async stopServer(mode: StopMode): Promise<void> {
    await this.exec(path.join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
  }

  /**
   * Restarts the server presenting `certificate` over TLS (`undefined`: TLS off). Clients
   * may still connect without TLS (trust on 127.0.0.1): refusing cleartext is their job.
   */
  async useTls(certificate: { certFile: string; keyFile: string } | undefined): Promise<void> {
    await this.stopServer("fast");
    this.tls = certificate;
    await this.startServer();
  }

  /** The server's log, for failure messages. */
  log(): string {
    try {
      return execFileSync("tail", ["-n", "40", path.join(this.dir, "postgres.log")], { encoding: "utf8" });
    } catch {
      return "";
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    exitHandlers.delete(this.onExit);
    if (existsSync(path.join(this.dataDir, "postmaster.pid"))) {
      await this.exec(path.join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-m", "immediate", "-w", "stop"]).catch(
        () => undefined,
      );
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (existsSync(path.join(this.dataDir, "postmaster.pid"))) {
      const [command, ...args] = [...this.prefix, path.join(this.bin, "pg_ctl"), "-D", this.dataDir, "-m", "immediate", "stop"];
      execFileSync(command, args, { stdio: "ignore", timeout: 10_000 });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async exec(file: string, args: string[]): Promise<void> {
    const [command, ...rest] = [...this.prefix, file, ...args];
    try {
      await run(command, rest, { cwd: this.dir, timeout: 90_000 });
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${path.basename(file)} ${args.at(-1)} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}\n${this.log()}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Redis

export interface PrivateRedisOptions {
  /** Serve TLS only (`--tls-port`, no plain port) with this certificate. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** `requirepass`: clients must AUTH with it. */
  readonly password?: string;
}

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private readonly onExit = () => this.child?.kill("SIGKILL");

  private constructor(
    readonly port: number,
    private readonly options: PrivateRedisOptions = {},
  ) {}

  get url(): string {
    return `${this.options.tls ? "rediss" : "redis"}://127.0.0.1:${this.port}`;
  }

  /** redis-server on a free port, no persistence; resolves once it accepts connections. */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), options);
    exitHandlers.add(redis.onExit);
    await redis.startServer();
    return redis;
  }

  /** (Re)starts the server on its port. */
  async startServer(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const { tls, password } = this.options;
    const listen = tls
      ? ["--port", "0", "--tls-port", String(this.port), "--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile, "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no"]
      : ["--port", String(this.port)];
    const child = spawn(
      "redis-server",
      [...listen, ...(password ? ["--requirepass", password] : []), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          child.stdout?.off("data", onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.resume();
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
    });
  }

  /** SIGKILL, as a crash or a lost node would; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async destroy(): Promise<void> {
    exitHandlers.delete(this.onExit);
    await this.kill();
  }
}
