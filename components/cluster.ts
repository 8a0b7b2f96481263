import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface EksClusterArgs {
  /** Name of the existing EKS cluster. */
  readonly clusterName: string;
  /** AWS region the cluster runs in. */
  readonly region: string;
}

/**
 * The kubeconfig for an EKS cluster: endpoint and CA from the cluster, credentials from
 * `aws eks get-token` at each call (nothing long-lived is stored in the state).
 */
export function eksKubeconfig(cluster: { name: string; endpoint: string; caData: string }, region: string): string {
  const context = `eks-${cluster.name}`;
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: context, cluster: { server: cluster.endpoint, "certificate-authority-data": cluster.caData } }],
    contexts: [{ name: context, context: { cluster: context, user: context } }],
    "current-context": context,
    users: [
      {
        name: context,
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1beta1",
            command: "aws",
            args: ["eks", "get-token", "--cluster-name", cluster.name, "--region", region, "--output", "json"],
            interactiveMode: "Never",
          },
        },
      },
    ],
  });
}

/**
 * The cluster's OIDC issuer (the `iss` of its ServiceAccount tokens) from what EKS reports
 * in `identities`; a cluster that reports none cannot vouch for its pods' tokens.
 */
export function eksOidcIssuer(clusterName: string, identities: readonly { oidcs?: readonly { issuer?: string }[] }[] | undefined): string {
  const issuer = identities?.[0]?.oidcs?.[0]?.issuer;
  if (!issuer) throw new Error(`EKS cluster ${clusterName} publishes no OIDC issuer`);
  return issuer;
}

/**
 * An existing EKS cluster, looked up by name, and the Kubernetes provider every Kubernetes
 * resource of this program is created with.
 */
export class EksCluster extends pulumi.ComponentResource {
  public readonly clusterName: pulumi.Output<string>;
  public readonly endpoint: pulumi.Output<string>;
  /** The cluster's OIDC issuer: `iss` of its ServiceAccount tokens; keys at `<issuer>/keys`. */
  public readonly oidcIssuer: pulumi.Output<string>;
  public readonly provider: k8s.Provider;

  constructor(name: string, args: EksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:cluster:EksCluster", name, {}, opts);
    const cluster = aws.eks.getClusterOutput({ name: args.clusterName, region: args.region }, { parent: this });
    this.clusterName = cluster.name;
    this.endpoint = cluster.endpoint;
    this.oidcIssuer = cluster.identities.apply((identities) => eksOidcIssuer(args.clusterName, identities));
    const kubeconfig = pulumi
      .all([cluster.name, cluster.endpoint, cluster.certificateAuthorities])
      .apply(([clusterName, endpoint, cas]) => eksKubeconfig({ name: clusterName, endpoint, caData: cas[0].data }, args.region));
    this.provider = new k8s.Provider(`${name}-k8s`, { kubeconfig, enableServerSideApply: true }, { parent: this });
    this.registerOutputs({ clusterName: this.clusterName, endpoint: this.endpoint, oidcIssuer: this.oidcIssuer });
  }
}
