export { freePort } from './free-port.js';
export { type NodeProcess, type SpawnNodeOptions, spawnNode } from './node-process.js';
export { type TempDir, tempDir } from './temp-dir.js';
export { type WaitForOptions, WaitForTimeoutError, waitFor } from './wait-for.js';
