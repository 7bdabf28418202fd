/**
 * Cells side by side, in their order: the next one starts when fewer than `limit` run and it fits
 * beside them (`fits`, given what runs); one that fits beside nothing runs alone. Results in the
 * items' order. A failure in one stops nothing: each `run` reports its own.
 */
export async function schedule<T, R>(
  items: T[],
  limit: number,
  fits: (item: T, running: T[]) => boolean,
  run: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  const running = new Map<number, Promise<void>>();
  for (const [index, item] of items.entries()) {
    // Wait for room: fewer than `limit` running, and this one fits beside them (or nothing runs).
    while (
      running.size &&
      (running.size >= limit ||
        !fits(
          item,
          [...running.keys()].map((i) => items[i] as T),
        ))
    )
      await Promise.race(running.values());
    running.set(
      index,
      run(item).then((result) => {
        results[index] = result;
        running.delete(index);
      }),
    );
  }
  await Promise.all(running.values());
  return results;
}

/** What a cell asks of the host while it runs: its nodes' memory with QEMU's share, and their vCPUs. */
export interface CellNeeds {
  memoryMiB: number;
  vcpus: number;
}

/**
 * Whether a cell fits beside the running ones: their memory together within what the host had
 * available when the matrix started (never oversubscribed), their vCPUs within `vcpusPerCore` per
 * core (past that TCG guests miss their timers).
 */
export const fitsHost =
  (host: { memoryAvailableMiB: number; cores: number }, vcpusPerCore: number) =>
  (cell: CellNeeds, running: CellNeeds[]): boolean => {
    const all = [...running, cell];
    const memory = all.reduce((sum, c) => sum + c.memoryMiB, 0);
    const vcpus = all.reduce((sum, c) => sum + c.vcpus, 0);
    return memory <= host.memoryAvailableMiB && vcpus <= vcpusPerCore * host.cores;
  };
