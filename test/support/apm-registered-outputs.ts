/**
 * What a component passes to `registerOutputs`, which the mock engine does not record. The
 * engine shows a component as complete, with these outputs in its state, once it registers
 * them; a component that registers none stays "creating" in `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";

/**
 * Builds the resources with `build` and returns them with what each component (by its
 * logical name) registered as its outputs. Call it inside a program run (runUnderMocks).
 */
export function withRegisteredOutputs<T>(build: () => T): { built: T; registered: Record<string, pulumi.Inputs | undefined> } {
  const registered: Record<string, pulumi.Inputs | undefined> = {};
  const prototype = pulumi.ComponentResource.prototype as any;
  const original = prototype.registerOutputs;
  prototype.registerOutputs = function (this: any, outputs?: pulumi.Inputs) {
    registered[this.__name] = outputs;
    return original.call(this, outputs);
  };
  try {
    return { built: build(), registered };
  } finally {
    prototype.registerOutputs = original;
  }
}
