/**
 * The payments-apm policy pack: `pulumi preview --policy-pack policy` (CI passes the
 * stack's node taints with `--policy-pack-config policy/config/<stack>.json`).
 * Building the pack starts the policy gRPC server: only the Pulumi CLI runs this file.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("payments-apm", {
  description: "Datadog APM on EKS: keys only in Secrets, unified service tagging, pinned images, non-root app containers, monitors that notify, an Agent on every node.",
  enforcementLevel: "mandatory",
  policies,
});
