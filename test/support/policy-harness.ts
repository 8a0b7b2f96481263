/**
 * Runs the pack's policies the way the policy server does, without the server: builds the
 * `ResourceValidationArgs` / `StackValidationArgs` the SDK would pass (pulumi-policy-aws'
 * `createResourceValidationArgs` pattern) and collects every `reportViolation` call.
 */
import type {
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";

/** What the engine sends for one resource: its type token, logical name and inputs. */
export interface ResourceUnderTest {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
}

class NotApplicable extends Error {}

const urnOf = (r: Pick<ResourceUnderTest, "type" | "name">, stack = "test") => `urn:pulumi:${stack}::payments-apm::${r.type}::${r.name}`;
const typeOf = (resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType;

/** The argument bag the policy SDK hands a resource validation. */
export function resourceValidationArgs(r: ResourceUnderTest, config: Record<string, unknown> = {}): ResourceValidationArgs {
  return {
    type: r.type,
    props: r.inputs,
    urn: urnOf(r),
    name: r.name,
    opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
    stackTags: new Map(),
    isType: (resourceClass) => typeOf(resourceClass) === r.type,
    asType: ((resourceClass: unknown) => (typeOf(resourceClass) === r.type ? r.inputs : undefined)) as ResourceValidationArgs["asType"],
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
}

export interface PolicyResult {
  readonly violations: string[];
  /** False when every validation of the policy declared itself not applicable to the resource. */
  readonly applicable: boolean;
}

/** Runs one resource policy against one resource; `config` is that policy's config. */
export async function checkResource(policy: ResourceValidationPolicy, r: ResourceUnderTest, config: Record<string, unknown> = {}): Promise<PolicyResult> {
  const validations = policy.validateResource === undefined ? [] : Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
  const violations: string[] = [];
  let applicable = false;
  for (const validate of validations) {
    try {
      await validate(resourceValidationArgs(r, config), (message) => violations.push(message));
      applicable = true;
    } catch (e) {
      if (!(e instanceof NotApplicable)) throw e;
    }
  }
  return { violations, applicable };
}

/** Runs one stack policy against a stack's resources (props = outputs, as after an update). */
export async function checkStack(policy: StackValidationPolicy, resources: readonly ResourceUnderTest[], config: Record<string, unknown> = {}): Promise<string[]> {
  const violations: string[] = [];
  const policyResources: PolicyResource[] = resources.map((r) => ({
    type: r.type,
    props: r.inputs,
    urn: urnOf(r),
    name: r.name,
    opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
    dependencies: [],
    propertyDependencies: {},
    isType: (resourceClass) => typeOf(resourceClass) === r.type,
    asType: ((resourceClass: unknown) => (typeOf(resourceClass) === r.type ? r.inputs : undefined)) as PolicyResource["asType"],
  }));
  const args: StackValidationArgs = {
    resources: policyResources,
    stackTags: new Map(),
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
  try {
    await policy.validateStack(args, (message) => violations.push(message));
  } catch (e) {
    if (!(e instanceof NotApplicable)) throw e;
  }
  return violations;
}
