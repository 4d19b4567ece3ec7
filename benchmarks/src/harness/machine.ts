import { arch, cpus, platform } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import type { Machine } from './report.js';

/** What the figures were measured on. */
export function describeMachine(): Machine {
  const db = new DatabaseSync(':memory:');
  try {
    const row = db.prepare('select sqlite_version() as version').get() as { version: string };
    const cores = cpus();
    return {
      cpus: cores.length,
      cpuModel: cores[0]?.model.trim() ?? 'unknown',
      node: process.version,
      sqlite: row.version,
      platform: `${platform()}-${arch()}`,
    };
  } finally {
    db.close();
  }
}

/**
 * Milliseconds this thread takes for a fixed piece of integer work (about 40 ms on an idle
 * core of the development VM). On a shared virtual machine the same work can take three
 * times as long from one minute to the next; benchmarks print it beside each measured
 * window so that a window measured on a slow machine can be recognised as such.
 */
export function cpuSpeedProbeMs(): number {
  const started = performance.now();
  let x = 0;
  for (let i = 0; i < 20_000_000; i++) x = (x + (i % 7)) | 0;
  // Keeps the loop from being optimised away.
  if (x === 0.5) throw new Error('unreachable');
  return performance.now() - started;
}
