/**
 * The env the program renders for the ledger migration Job's container, resolved the way the
 * kubelet would, so the app tests run the `migrate` entry with what production gets.
 */
import { kubernetesObjects } from "../../scripts/manifests";
import { stackRun } from "./rendered-env";

/** Literal values and the pod's label fields; variables from Secrets are left out (tests supply them). */
export async function renderedMigrationEnv(stack: string): Promise<Record<string, string>> {
  const job = kubernetesObjects(await stackRun(stack))
    .map((o) => o.object)
    .find((o) => o.kind === "Job" && /^ledger-migrations-/.test(o.metadata.name ?? ""));
  if (!job) throw new Error(`stack ${stack} renders no ledger migration Job`);
  const template = (job.spec as any).template;
  const labels: Record<string, string> = template.metadata.labels;
  const env: Record<string, string> = {};
  for (const e of template.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "status.hostIP") env[e.name] = "127.0.0.1";
    else if (e.valueFrom?.fieldRef) {
      const m = /^metadata\.labels\['(.+)'\]$/.exec(e.valueFrom.fieldRef.fieldPath);
      if (!m || labels[m[1]] === undefined) throw new Error(`migration Job: cannot resolve ${e.name} from ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = labels[m[1]];
    } else if (!e.valueFrom?.secretKeyRef) throw new Error(`migration Job: unsupported env source for ${e.name}`);
  }
  return env;
}
