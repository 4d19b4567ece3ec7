import { statfs } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { ResourceUsage } from './snapshot.js';

/** Samples this process' CPU, memory, event loop, disk and handles. */
export interface ResourceSampler {
  sample(): Promise<ResourceUsage>;
  close(): void;
}

/** How long a disk reading is served before the next sample reads again. */
const DISK_REFRESH_MS = 1000;

/**
 * Creates a sampler. CPU percent and event-loop figures cover the time since the
 * previous sample (the first covers the time since creation). Disk figures are read
 * at most once a second, in the background after the first: a snapshot then never
 * waits on the thread pool, which on a loaded machine costs a scheduling round.
 */
export function createResourceSampler(options: { diskPath?: string } = {}): ResourceSampler {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let lastCpu = process.cpuUsage();
  let lastWall = performance.now();
  let lastElu = performance.eventLoopUtilization();
  let disk: { free: number; total: number } | null | undefined;
  let diskReadAt = Number.NEGATIVE_INFINITY;
  let diskReading: Promise<void> | undefined;
  const readDisk = (path: string) => {
    diskReading ??= statfs(path)
      .then(
        (fs) => {
          disk = { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize };
        },
        () => {
          disk = null;
        },
      )
      .finally(() => {
        diskReadAt = performance.now();
        diskReading = undefined;
      });
    return diskReading;
  };
  return {
    async sample() {
      const cpu = process.cpuUsage();
      const wall = performance.now();
      const cpuMicros = cpu.user - lastCpu.user + (cpu.system - lastCpu.system);
      const cpuPercent = wall > lastWall ? (cpuMicros / 1000 / (wall - lastWall)) * 100 : 0;
      const elu = performance.eventLoopUtilization(lastElu);
      lastCpu = cpu;
      lastWall = wall;
      lastElu = performance.eventLoopUtilization();
      const memory = process.memoryUsage();
      if (options.diskPath !== undefined) {
        if (disk === undefined) await readDisk(options.diskPath);
        else if (wall - diskReadAt > DISK_REFRESH_MS) void readDisk(options.diskPath);
      }
      const diskFreeBytes = disk?.free ?? null;
      const diskTotalBytes = disk?.total ?? null;
      const handles = process.getActiveResourcesInfo();
      const handlesByType: Record<string, number> = {};
      for (const type of handles) handlesByType[type] = (handlesByType[type] ?? 0) + 1;
      const hasLoop = loop.count > 0;
      const usage: ResourceUsage = {
        uptimeSec: process.uptime(),
        cpuPercent: Math.max(0, cpuPercent),
        cpuUserSec: cpu.user / 1e6,
        cpuSystemSec: cpu.system / 1e6,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        heapTotalBytes: memory.heapTotal,
        externalBytes: memory.external,
        eventLoopDelayP50Ms: hasLoop ? loop.percentile(50) / 1e6 : 0,
        eventLoopDelayP99Ms: hasLoop ? loop.percentile(99) / 1e6 : 0,
        eventLoopDelayMaxMs: hasLoop ? loop.max / 1e6 : 0,
        eventLoopUtilization: Math.min(1, Math.max(0, elu.utilization)),
        diskFreeBytes,
        diskTotalBytes,
        openHandles: handles.length,
        handlesByType,
      };
      loop.reset();
      return usage;
    },
    close: () => loop.disable(),
  };
}
