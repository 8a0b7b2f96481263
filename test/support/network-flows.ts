/**
 * Decides whether NetworkPolicies let a flow through, with the Kubernetes semantics: a pod
 * selected by no policy of a type is open in that direction; a selected one lets through
 * only what some rule of a selecting policy allows (rules add up). Both the source's egress
 * and the destination's ingress must allow the flow. Enough for the flow tables: matchLabels
 * selectors, ipBlock without `except`, numbered ports.
 */
import type { NetworkPolicyObject } from "../../components/network-policies";

export type Endpoint =
  | { readonly pod: { readonly namespace: string; readonly namespaceLabels?: Record<string, string>; readonly labels: Record<string, string> } }
  | { readonly ip: string };

export interface FlowCase {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly port: number;
  readonly protocol?: "TCP" | "UDP";
}

const matches = (selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string>) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

function ipToNumber(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const start = ipToNumber(base) - (ipToNumber(base) % size);
  const n = ipToNumber(ip);
  return n >= start && n < start + size;
}

function namespaceLabelsOf(pod: { namespace: string; namespaceLabels?: Record<string, string> }): Record<string, string> {
  return { "kubernetes.io/metadata.name": pod.namespace, ...pod.namespaceLabels };
}

function peerMatches(peer: any, policyNamespace: string, endpoint: Endpoint): boolean {
  if (peer.ipBlock) return "ip" in endpoint && inCidr(endpoint.ip, peer.ipBlock.cidr);
  if (!("pod" in endpoint)) return false;
  const pod = endpoint.pod;
  const namespaceOk = peer.namespaceSelector ? matches(peer.namespaceSelector, namespaceLabelsOf(pod)) : pod.namespace === policyNamespace;
  const podOk = peer.podSelector ? matches(peer.podSelector, pod.labels) : true;
  return namespaceOk && podOk;
}

function portMatches(rule: any, flow: FlowCase): boolean {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p: any) => p.port === flow.port && (p.protocol ?? "TCP") === (flow.protocol ?? "TCP"));
}

function selecting(policies: readonly NetworkPolicyObject[], endpoint: Endpoint, type: "Ingress" | "Egress"): NetworkPolicyObject[] {
  if (!("pod" in endpoint)) return [];
  return policies.filter(
    (p) => p.metadata.namespace === endpoint.pod.namespace && p.spec.policyTypes.includes(type) && matches(p.spec.podSelector, endpoint.pod.labels),
  );
}

/** Which policy decision stops the flow, or undefined when it is allowed. */
export function blockedBy(policies: readonly NetworkPolicyObject[], flow: FlowCase): "egress" | "ingress" | undefined {
  const egress = selecting(policies, flow.from, "Egress");
  const egressOk =
    egress.length === 0 ||
    egress.some((p) => (p.spec.egress ?? []).some((rule: any) => portMatches(rule, flow) && rule.to.some((peer: any) => peerMatches(peer, p.metadata.namespace, flow.to))));
  if (!egressOk) return "egress";
  const ingress = selecting(policies, flow.to, "Ingress");
  const ingressOk =
    ingress.length === 0 ||
    ingress.some((p) => (p.spec.ingress ?? []).some((rule: any) => portMatches(rule, flow) && rule.from.some((peer: any) => peerMatches(peer, p.metadata.namespace, flow.from))));
  return ingressOk ? undefined : "ingress";
}
