/** A live status line for long benchmarks. */
export interface Progress {
  /** Reports `done` of `total` (total 0: unknown) and an optional short status. */
  update(done: number, total: number, status?: string): void;
  /** Clears the live line. */
  end(): void;
}

/**
 * On a terminal, one line redrawn in place (at most 10 times a second); elsewhere
 * (CI logs) a plain line every 5 s, so long runs still show they are alive.
 */
export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const live = stream.isTTY === true;
  const minIntervalMs = live ? 100 : 5000;
  let last = 0;
  let drawn = false;
  const started = performance.now();
  return {
    update(done, total, status) {
      const now = performance.now();
      if (now - last < minIntervalMs) return;
      last = now;
      const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : null;
      const bar = pct === null ? '' : `[${'#'.repeat(pct / 5).padEnd(20, '.')}] ${String(pct).padStart(3)}% `;
      const text = `${label} ${bar}${((now - started) / 1000).toFixed(1)}s${status ? `  ${status}` : ''}`;
      if (live) {
        stream.write(`\r\x1b[2K${text}`);
        drawn = true;
      } else {
        stream.write(`${text}\n`);
      }
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
