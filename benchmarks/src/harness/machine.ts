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
