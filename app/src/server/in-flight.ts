/**
 * The route handlers still running. fastify's close() waits for connections, not handlers:
 * one whose client hung up keeps working after its connection is gone, so shutdown waits
 * here before it closes the pools and clients that handler still uses.
 */
export class InFlightHandlers {
  private running = 0;
  private readonly waiters: Array<() => void> = [];

  /** How many tracked handlers have been called and not yet settled. */
  get count(): number {
    return this.running;
  }

  /**
   * `handler`, counted from its call until the promise it returns settles (or until it
   * returns or throws, if it is synchronous). The handler's own result goes to fastify.
   */
  track<Handler extends (...args: never[]) => unknown>(handler: Handler): Handler {
    const handlers = this;
    return function (this: unknown, ...args: Parameters<Handler>) {
      handlers.running += 1;
      const settled = () => handlers.settle();
      let result: unknown;
      try {
        result = handler.apply(this, args);
      } finally {
        if (result instanceof Promise) result.then(settled, settled);
        else settled();
      }
      return result;
    } as Handler;
  }

  /** Resolves once no tracked handler is running (at once if none is). */
  drained(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private settle(): void {
    this.running -= 1;
    if (this.running === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }
}
