/** Things that must reach the disk before the process ends, flushed synchronously on 'exit'. */
const pending = new Set<{ flushSync(): void }>();
let installed = false;

function flushAll(): void {
  for (const sink of pending) {
    try {
      sink.flushSync();
    } catch {
      // 'exit' handlers cannot report anything useful; the next sink must still flush.
    }
  }
}

/** Flushes `sink` synchronously when the process exits (process.exit included); returns the unregister function. */
export function flushOnExit(sink: { flushSync(): void }): () => void {
  if (!installed) {
    // One listener for every sink: process.exit() runs 'exit' listeners synchronously
    // and nothing asynchronous after them, so the write must be synchronous.
    process.on('exit', flushAll);
    installed = true;
  }
  pending.add(sink);
  return () => pending.delete(sink);
}
