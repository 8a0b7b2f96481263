/**
 * What a program run asks of the engine for each resource beyond its inputs (its parent,
 * its explicit dependencies, the outputs it wants kept secret), recorded by logical name.
 * Call it inside the body given to runUnderMocks: it wraps the mock engine's resource
 * monitor of that run.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
  /** URN of the parent resource (the stack for a top-level resource). */
  readonly parent: string;
  readonly dependencies: string[];
  readonly additionalSecretOutputs: string[];
}

export function recordRegistrations(): Record<string, Registration> {
  type Request = { getName(): string; getParent(): string; getDependenciesList(): string[]; getAdditionalsecretoutputsList(): string[] };
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: Request, callback: unknown): void } | undefined;
  if (!monitor) throw new Error("recordRegistrations: call it inside a program run under the mocks");
  const registrations: Record<string, Registration> = {};
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    registrations[req.getName()] = {
      parent: req.getParent(),
      dependencies: req.getDependenciesList(),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    };
    register(req, callback);
  };
  return registrations;
}
