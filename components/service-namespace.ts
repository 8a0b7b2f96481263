import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface ServiceNamespaceArgs {
  /** Namespace name, e.g. "payments". */
  readonly name: string;
  /**
   * Enforce Pod Security `restricted` (pods that break it are refused at admission). False:
   * `restricted` is only audited and warned about. Default true.
   */
  readonly enforceRestricted?: boolean;
}

/**
 * The Pod Security admission labels: `restricted` enforced (no root, no privilege
 * escalation, no capabilities, a seccomp profile, no host namespaces, ports or paths),
 * or only audited and warned about. The version is pinned to the policy as of Kubernetes
 * 1.33, so a cluster upgrade cannot tighten it under running workloads unannounced.
 */
export function podSecurityLabels(enforceRestricted: boolean): Record<string, string> {
  const audit = { "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted" };
  return enforceRestricted
    ? { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.33", ...audit }
    : audit;
}

/** The namespace the traced services run in. */
export class ServiceNamespace extends pulumi.ComponentResource {
  public readonly name: pulumi.Output<string>;

  constructor(name: string, args: ServiceNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:app:ServiceNamespace", name, {}, opts);
    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.name,
          labels: {
            "app.kubernetes.io/part-of": "payments",
            ...podSecurityLabels(args.enforceRestricted ?? true),
          },
        },
      },
      { parent: this },
    );
    this.name = ns.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
