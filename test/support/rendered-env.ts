/**
 * The env the program renders for a service's container, resolved the way the kubelet
 * would, so the app tests start the services with exactly what production gets.
 */
import type { ServiceName } from "../../app/src/tracing/conventions";
import { deploymentEnv, kubernetesObjects } from "../../scripts/manifests";
import { runStack, type ProgramRun } from "../../scripts/mock-engine";

const runs = new Map<string, Promise<ProgramRun>>();

/**
 * Forgets the runs: the next stackRun runs the program again. A mutation run does so
 * before each run of the tests (test/support/mutation-hooks.ts), each with another mutant on.
 */
export function forgetStackRuns(): void {
  runs.clear();
}

/** One program run per stack per test process (per run of the tests, in a mutation run). */
export function stackRun(stack: string): Promise<ProgramRun> {
  let run = runs.get(stack);
  if (!run) {
    run = runStack(stack);
    runs.set(stack, run);
  }
  return run;
}

export interface RenderedEnvOptions {
  /** What `status.hostIP` resolves to (the node's address). Default 127.0.0.1. */
  readonly hostIP?: string;
}

/**
 * The container env of `service`'s Deployment in `stack`: literal values, fields of the
 * pod (labels, host IP) resolved. Variables from Secrets are left out: tests supply them.
 */
export async function renderedServiceEnv(stack: string, service: ServiceName, options: RenderedEnvOptions = {}): Promise<Record<string, string>> {
  const run = await stackRun(stack);
  const deployment = kubernetesObjects(run)
    .map((o) => o.object)
    .find((o) => o.kind === "Deployment" && o.metadata.name === service);
  if (!deployment) throw new Error(`stack ${stack} renders no Deployment named ${service}`);
  const labels: Record<string, string> = (deployment.spec as any).template.metadata.labels;
  const env: Record<string, string> = {};
  for (const e of deploymentEnv(deployment)[service] ?? []) {
    const from = e.valueFrom as any;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (from?.fieldRef?.fieldPath === "status.hostIP") env[e.name] = options.hostIP ?? "127.0.0.1";
    else if (from?.fieldRef) {
      const m = /^metadata\.labels\['(.+)'\]$/.exec(from.fieldRef.fieldPath);
      if (!m || labels[m[1]] === undefined) throw new Error(`${service}: cannot resolve ${e.name} from ${from.fieldRef.fieldPath}`);
      env[e.name] = labels[m[1]];
    } else if (!from?.secretKeyRef) throw new Error(`${service}: unsupported env source for ${e.name}`);
  }
  return env;
}
