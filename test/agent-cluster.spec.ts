/**
 * The cluster the Agent and the services run on: the existing EKS cluster looked up by name,
 * the kubeconfig every Kubernetes object is created with, and the OIDC issuer the services
 * trust for ServiceAccount tokens.
 */
import * as assert from "node:assert/strict";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EksCluster, eksKubeconfig, eksOidcIssuer } from "../components/cluster";
import { type ProgramRun, runUnderMocks } from "../scripts/mock-engine";

describe("the EKS cluster", () => {
  describe("eksKubeconfig", () => {
    it("names one context after the cluster and fetches a token with `aws eks get-token` at each call, never interactively", () => {
      const kubeconfig = JSON.parse(eksKubeconfig({ name: "payments-prod", endpoint: "https://ABC123.gr7.eu-west-1.eks.amazonaws.com", caData: "Q0EgREFUQQ==" }, "eu-west-1"));
      assert.deepEqual(kubeconfig, {
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "eks-payments-prod", cluster: { server: "https://ABC123.gr7.eu-west-1.eks.amazonaws.com", "certificate-authority-data": "Q0EgREFUQQ==" } }],
        contexts: [{ name: "eks-payments-prod", context: { cluster: "eks-payments-prod", user: "eks-payments-prod" } }],
        "current-context": "eks-payments-prod",
        users: [
          {
            name: "eks-payments-prod",
            user: {
              exec: {
                apiVersion: "client.authentication.k8s.io/v1beta1",
                command: "aws",
                args: ["eks", "get-token", "--cluster-name", "payments-prod", "--region", "eu-west-1", "--output", "json"],
                interactiveMode: "Never",
              },
            },
          },
        ],
      });
    });
  });

  describe("eksOidcIssuer", () => {
    it("is the issuer of the cluster's first OIDC identity", () => {
      assert.equal(
        eksOidcIssuer("payments-prod", [{ oidcs: [{ issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123" }, { issuer: "https://other.example" }] }]),
        "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123",
      );
    });

    it("fails, naming the cluster, when EKS reports no issuer", () => {
      for (const identities of [undefined, [], [{}], [{ oidcs: [] }], [{ oidcs: [{}] }], [{ oidcs: [{ issuer: "" }] }]]) {
        assert.throws(() => eksOidcIssuer("payments-prod", identities), { message: "EKS cluster payments-prod publishes no OIDC issuer" }, JSON.stringify(identities));
      }
    });
  });

  describe("EksCluster under Pulumi mocks", () => {
    let run: ProgramRun;
    before(async () => {
      run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
        const cluster = new EksCluster("eks", { clusterName: "payments-prod", region: "eu-west-1" });
        return { clusterName: cluster.clusterName, endpoint: cluster.endpoint, oidcIssuer: cluster.oidcIssuer, providerUrn: cluster.provider.urn };
      });
    });

    it("looks the cluster up by name in the configured region", () => {
      assert.deepEqual(
        run.invokes.map((i) => [i.token, i.inputs.name, i.inputs.region]),
        [["aws:eks/getCluster:getCluster", "payments-prod", "eu-west-1"]],
      );
    });

    it("registers one component and, under it, one Kubernetes provider with server-side apply and the cluster's kubeconfig", () => {
      assert.deepEqual(
        run.resources.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => [r.type, r.name]),
        [
          ["payments-apm:cluster:EksCluster", "eks"],
          ["pulumi:providers:kubernetes", "eks-k8s"],
        ],
      );
      const provider = run.resources.find((r) => r.type === "pulumi:providers:kubernetes")!;
      // The provider's inputs as the engine receives them: booleans as JSON text.
      assert.equal(provider.inputs.enableServerSideApply, "true");
      const kubeconfig = JSON.parse(provider.inputs.kubeconfig);
      assert.equal(kubeconfig.clusters[0].cluster.server, "https://MOCKED-ENDPOINT.payments-prod.eks.amazonaws.com");
      assert.equal(kubeconfig.clusters[0].cluster["certificate-authority-data"], Buffer.from("MOCKED CLUSTER CA").toString("base64"));
      assert.deepEqual(kubeconfig.users[0].user.exec.args, ["eks", "get-token", "--cluster-name", "payments-prod", "--region", "eu-west-1", "--output", "json"]);
    });

    it("exposes the cluster's name, endpoint, OIDC issuer and its provider, parented to it", () => {
      assert.deepEqual(run.outputs, {
        clusterName: "payments-prod",
        endpoint: "https://MOCKED-ENDPOINT.payments-prod.eks.amazonaws.com",
        oidcIssuer: "https://oidc.eks.us-east-1.amazonaws.com/id/MOCKEDPAYMENTSPROD",
        // A child of the component: its URN, the provider's identity in the state, says so.
        providerUrn: "urn:pulumi:test::payments-apm::payments-apm:cluster:EksCluster$pulumi:providers:kubernetes::eks-k8s",
      });
      // Registered as the component's outputs too, so `pulumi up` shows it done, with them.
      assert.deepEqual(run.componentOutputs["payments-apm:cluster:EksCluster::eks"], ["clusterName", "endpoint", "oidcIssuer"]);
    });

    it("looks the cluster up with the AWS provider the component is given (another account or region)", async () => {
      const providers: string[] = [];
      await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
        // The provider of each invoke, as the engine receives it.
        type Request = { getProvider(): string };
        const monitor = pulumi.runtime.getMonitor() as unknown as { invoke(req: Request, callback: unknown): void };
        const invoke = monitor.invoke.bind(monitor);
        monitor.invoke = (req, callback) => {
          providers.push(req.getProvider());
          invoke(req, callback);
        };
        const payments = new aws.Provider("payments-account", { region: "eu-west-1" });
        new EksCluster("eks", { clusterName: "payments-prod", region: "eu-west-1" }, { providers: { aws: payments } });
      });
      assert.deepEqual(providers, ["urn:pulumi:test::payments-apm::pulumi:pulumi:Stack$pulumi:providers:aws::payments-account::payments-account-id"]);
    });
  });
});
