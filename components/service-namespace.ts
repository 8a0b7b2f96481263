import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface ServiceNamespaceArgs {
  /** Namespace name, e.g. "payments". */
  readonly name: string;
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
            // Pods mount the Agent's socket directory by hostPath, which the "restricted"
            // and "baseline" Pod Security levels forbid: audit and warn only.
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
          },
        },
      },
      { parent: this },
    );
    this.name = ns.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
