import { statfs } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { ResourceUsage } from './snapshot.js';

/** Samples this process' CPU, memory, event loop, disk and handles. */
export interface ResourceSampler {
  sample(): Promise<ResourceUsage>;
  close(): void;
}

/**
 * Creates a sampler. CPU percent and event-loop figures cover the time since the
 * previous sample (the first covers the time since creation).
 */
export function createResourceSampler(options: { diskPath?: string } = {}): ResourceSampler {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let lastCpu = process.cpuUsage();
  let lastWall = performance.now();
  let lastElu = performance.eventLoopUtilization();
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
      let diskFreeBytes: number | null = null;
      let diskTotalBytes: number | null = null;
      if (options.diskPath !== undefined) {
        const fs = await statfs(options.diskPath).catch(() => undefined);
        if (fs) {
          diskFreeBytes = fs.bavail * fs.bsize;
          diskTotalBytes = fs.blocks * fs.bsize;
        }
      }
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
