import type { Logger } from './log.js';
import { describeError } from './errors.js';

/**
 * Owns the resources of a run. Releases run in reverse order of creation; each runs once, and a
 * failing release is logged and collected but never skips the others (NixOS driver cleanup).
 */
export class Scope implements AsyncDisposable {
  private readonly releases: { name: string; release: () => Promise<void> | void }[] = [];
  private disposed = false;
  readonly errors: Error[] = [];

  constructor(private readonly log?: Logger) {}

  /** Registers a release; returns a function that runs it early (and only once). */
  defer(name: string, release: () => Promise<void> | void): () => Promise<void> {
    let done = false;
    const once = async () => {
      if (done) return;
      done = true;
      await release();
    };
    this.releases.push({ name, release: once });
    return once;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const { name, release } of this.releases.reverse()) {
      try {
        await release();
      } catch (error) {
        this.log?.warn(`error during cleanup of ${name}: ${describeError(error)}`);
        this.errors.push(new Error(`failed to clean up ${name}`, { cause: error }));
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
