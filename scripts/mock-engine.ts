/**
 * Runs the real Pulumi program offline: Pulumi's mocks stand in for the deployment engine
 * (no CLI, no cloud credentials) and every resource registration is recorded with its
 * inputs. Used by `npm run render` and by the tests, so both see the same program run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";

export const REPO_ROOT = path.resolve(__dirname, "..");
export const PROGRAM = path.join(REPO_ROOT, "index.ts");

/** Pulumi's marker for a secret value in serialized inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

export interface RecordedResource {
  /** Type token, e.g. `kubernetes:apps/v1:DaemonSet`. */
  readonly type: string;
  /** Logical name. */
  readonly name: string;
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, any>;
  /** Dotted paths of the inputs that were marked secret. */
  readonly secretPaths: readonly string[];
  /** Id of the provider resource that manages it, if any (`urn::id`). */
  readonly provider?: string;
  readonly custom: boolean;
}

export interface RecordedInvoke {
  readonly token: string;
  readonly inputs: Record<string, any>;
}

export interface ProgramRun {
  readonly resources: readonly RecordedResource[];
  readonly invokes: readonly RecordedInvoke[];
  /** Stack outputs, resolved (secret outputs are replaced by "[secret]"). */
  readonly outputs: Record<string, unknown>;
  /**
   * What each component handed the engine with `registerOutputs`: `<type>::<name>` → the
   * output names, sorted (the values may be unknown in a preview).
   */
  readonly componentOutputs: Readonly<Record<string, readonly string[]>>;
}

export interface StackConfigInput {
  /** Full key (`namespace:key`) → value as the engine passes it (structured values as JSON). */
  readonly config: Record<string, string>;
  /** Full keys whose values are secret. */
  readonly secretKeys: readonly string[];
}

/** Keys that hold secrets and are never written into `Pulumi.<stack>.yaml` in this repo. */
export const SECRET_CONFIG_KEYS = [
  "datadog:apiKey",
  "datadog:appKey",
  "payments-apm:databasePassword",
  "payments-apm:databaseMigrationPassword",
  "payments-apm:databaseWorkerPassword",
  "payments-apm:rolloutChecksumKey",
  "payments-apm:redisKeySecret",
  "payments-apm:redisAuthToken",
  "payments-apm:brokerPassword",
] as const;

/** A visible stand-in for a secret value, so a rendered file can never carry a real one. */
export const secretPlaceholder = (key: string) => `PLACEHOLDER-SECRET(${key})`;

/**
 * Reads `Pulumi.<stack>.yaml` the way the CLI hands it to a program: structured values as
 * JSON text, scalars as strings, keys without a namespace under the project's namespace.
 * Secret keys absent from the file get a visible placeholder unless `withSecrets` says otherwise.
 */
export function stackConfigFromFile(
  stack: string,
  options: { secrets?: Partial<Record<string, string>> } = {},
): StackConfigInput {
  const file = path.join(REPO_ROOT, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    const known = fs.readdirSync(REPO_ROOT).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f)).map((f) => f.split(".")[1]);
    throw new Error(`No stack file ${path.basename(file)} (stacks here: ${known.join(", ") || "none"})`);
  }
  const doc = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    const fullKey = key.includes(":") ? key : `payments-apm:${key}`;
    if (value && typeof value === "object" && "secure" in (value as object)) {
      throw new Error(`${file}: ${fullKey} holds ciphertext; this offline run cannot decrypt it`);
    }
    config[fullKey] = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  }
  for (const key of SECRET_CONFIG_KEYS) {
    const supplied = options.secrets && key in options.secrets ? options.secrets[key] : secretPlaceholder(key);
    if (supplied !== undefined) config[key] = supplied;
    secretKeys.push(key);
  }
  return { config, secretKeys };
}

/** What the mocked cloud answers for the existing EKS cluster. */
function mockEksCluster(inputs: Record<string, any>) {
  const name = String(inputs.name);
  return {
    id: name,
    name,
    arn: `arn:aws:eks:us-east-1:123456789012:cluster/${name}`,
    endpoint: `https://MOCKED-ENDPOINT.${name}.eks.amazonaws.com`,
    certificateAuthorities: [{ data: Buffer.from("MOCKED CLUSTER CA").toString("base64") }],
    version: "1.33",
    status: "ACTIVE",
    vpcConfig: [{}],
    accessConfigs: [{ authenticationMode: "API_AND_CONFIG_MAP" }],
    identities: [{ oidcs: [{ issuer: `https://oidc.eks.us-east-1.amazonaws.com/id/MOCKED${name.toUpperCase().replace(/[^A-Z0-9]/g, "")}` }] }],
    tags: {},
  };
}

function unwrapSecrets(value: any, at: string, secretPaths: string[]): any {
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${at}[${i}]`, secretPaths));
  if (value && typeof value === "object") {
    if (value[SECRET_SIG] === SECRET_SIG_VALUE) {
      secretPaths.push(at);
      return unwrapSecrets(value.value, at, secretPaths);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v, at ? `${at}.${k}` : k, secretPaths)]));
  }
  return value;
}

function clearProgramModules() {
  for (const id of Object.keys(require.cache)) {
    if (id.includes(`${path.sep}node_modules${path.sep}`)) continue;
    if (id.startsWith(REPO_ROOT)) delete require.cache[id];
  }
}

let running = false;

/**
 * Runs `index.ts` under the mocks with the given config and returns what it registered.
 * One run at a time per process (the Pulumi runtime is process-global).
 */
export function runProgram(stack: string, input: StackConfigInput, programPath = PROGRAM): Promise<ProgramRun> {
  return runUnderMocks(stack, input, () => require(programPath));
}

/**
 * Runs `body` as a Pulumi program under the mocks (e.g. one component alone, in a unit
 * test) and returns what it registered. `body`'s return value becomes the stack outputs.
 * `preview: false` runs it as an update (`pulumi.runtime.isDryRun()` is false).
 */
export async function runUnderMocks(
  stack: string,
  input: StackConfigInput,
  body: () => unknown,
  { preview = true }: { readonly preview?: boolean } = {},
): Promise<ProgramRun> {
  if (running) throw new Error("runUnderMocks: another program run is in progress in this process");
  running = true;
  const resources: RecordedResource[] = [];
  const invokes: RecordedInvoke[] = [];
  const componentOutputs: Record<string, string[]> = {};
  try {
    await pulumi.runtime.setMocks(
      {
        newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
          const secretPaths: string[] = [];
          const inputs = unwrapSecrets(args.inputs, "", secretPaths);
          resources.push({ type: args.type, name: args.name, inputs, secretPaths, provider: args.provider, custom: args.custom ?? true });
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
          invokes.push({ token: args.token, inputs: args.inputs });
          if (args.token === "aws:eks/getCluster:getCluster") return mockEksCluster(args.inputs);
          throw new Error(`mock engine: no answer for invoke ${args.token}`);
        },
      },
      "payments-apm",
      stack,
      preview, // by default a preview, like `pulumi preview`; false: an update, like `pulumi up`
    );
    pulumi.runtime.setAllConfig(input.config, [...input.secretKeys]);
    recordRegisteredOutputs(componentOutputs);
    clearProgramModules();
    // The stack's own outputs resolve as one Output: one unknown value would hide them all.
    let stackOutputs: Record<string, unknown> | undefined;
    await pulumi.runtime.runInPulumiStack(async () => (stackOutputs = (await body()) as Record<string, unknown> | undefined));
    await pulumi.runtime.disconnect();
    const outputs: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(stackOutputs ?? {})) outputs[key] = await resolveOutput(value);
    return { resources, invokes, outputs, componentOutputs };
  } finally {
    clearProgramModules();
    running = false;
  }
}

/**
 * Wraps the mock engine's `registerResourceOutputs` (the engine call behind a component's
 * `registerOutputs`) to note the output names of each component, by `<type>::<name>` (the
 * URN's last two parts).
 */
function recordRegisteredOutputs(into: Record<string, string[]>): void {
  type Request = { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined };
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResourceOutputs(req: Request, callback: unknown): void } | undefined;
  if (!monitor) throw new Error("mock engine: no resource monitor after setMocks");
  const register = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, callback) => {
    const [, type, name] = /^urn:pulumi:[^:]*::[^:]*::(?:.*\$)?([^$]*)::(.*)$/.exec(req.getUrn()) ?? [];
    if (type !== undefined && name !== undefined) into[`${type}::${name}`] = Object.keys(req.getOutputs()?.toJavaScript() ?? {}).sort();
    register(req, callback);
  };
}

/** A stack output's value as a preview shows it: secret and unknown values are named, not shown. */
async function resolveOutput(value: unknown): Promise<unknown> {
  const out = pulumi.output(value as pulumi.Input<unknown>) as any;
  const [v, known, secret] = await Promise.all([out.promise(true), out.isKnown, out.isSecret]);
  if (secret) return "[secret]";
  return known ? v : "[unknown until applied]";
}

/** Loads `Pulumi.<stack>.yaml`, runs the program under the mocks and returns the run. */
export async function runStack(stack: string, options: { secrets?: Partial<Record<string, string>>; overrides?: Record<string, string | undefined> } = {}) {
  const input = stackConfigFromFile(stack, options);
  const config = { ...input.config };
  for (const [k, v] of Object.entries(options.overrides ?? {})) {
    if (v === undefined) delete config[k];
    else config[k] = v;
  }
  return runProgram(stack, { config, secretKeys: input.secretKeys });
}
