import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import type { DiagnosticReport } from './report-schema.js';

const pct = (x: number | null, digits = 3) => (x === null ? 'unknown' : `${(x * 100).toFixed(digits)}%`);
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 3 : 1)} ms`);
const mib = (x: number | null) => (x === null ? 'n/a' : `${(x / 1024 / 1024).toFixed(1)} MiB`);
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

/**
 * Renders a report as Markdown for people: status and why, cluster table (etcd
 * `endpoint status` style), nodes, SLOs, metrics, errors, recent failures, log
 * completeness and the tail of the merged log.
 */
export function renderReportMarkdown(report: DiagnosticReport, options: { logTail?: number } = {}): string {
  const out: string[] = [];
  const icon = report.status === 'healthy' ? '✅' : report.status === 'degraded' ? '⚠️' : '❌';
  out.push(`# Diagnostic report: ${icon} ${report.status.toUpperCase()}`, '');
  out.push(`Generated ${report.generatedAt} in ${ms(report.durationMs)} (${report.schema}).`, '');
  if (report.reasons.length) {
    out.push('## Why', '', ...report.reasons.map((r) => `- ${r}`), '');
  }
  const c = report.cluster;
  out.push('## Cluster', '');
  out.push(
    `Leader **${c.leaderId ?? 'none'}**, term ${c.term ?? 'n/a'}; ${c.healthyVoters}/${c.voters} voters healthy, quorum ${c.quorum}, failure tolerance ${c.failureTolerance}.`,
    '',
  );
  out.push(
    '| member | reachable | voter | role | term | commit | applied | lag |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const m of c.members) {
    out.push(
      `| ${cell(m.id)} | ${m.reachable ? 'yes' : m.queried ? '**NO**' : 'not queried'} | ${m.voter ? 'yes' : 'no'} | ${m.role ?? '-'} | ${m.term ?? '-'} | ${m.commitIndex ?? '-'} | ${m.appliedIndex ?? '-'} | ${m.lag ?? '-'} |`,
    );
  }
  out.push('', '## Nodes', '');
  out.push(
    '| node | answer | livez | readyz | CPU | RSS | heap | loop p99 | disk free | handles | logs |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const n of report.nodes) {
    const r = n.resources;
    const failing = (h: typeof n.readyz) =>
      h === null
        ? '-'
        : h.ok
          ? 'ok'
          : `**failed** (${h.checks
              .filter((x) => !x.ok)
              .map((x) => x.name)
              .join(', ')})`;
    out.push(
      `| ${cell(n.nodeId)} | ${n.outcome === 'ok' ? `ok, ${ms(n.latencyMs)}` : `**${n.outcome}**: ${cell(n.error ?? '')}`} | ${failing(n.livez)} | ${failing(n.readyz)} | ${r ? `${r.cpuPercent.toFixed(0)}%` : '-'} | ${mib(r?.rssBytes ?? null)} | ${mib(r?.heapUsedBytes ?? null)} | ${r ? ms(r.eventLoopDelayP99Ms) : '-'} | ${mib(r?.diskFreeBytes ?? null)} | ${r?.openHandles ?? '-'} | ${n.logRecords} |`,
    );
  }
  out.push(
    '',
    '## SLOs',
    '',
    '| SLO | status | current | compliance (30d) | budget left | alerts |',
    '|---|---|---|---|---|---|',
  );
  for (const s of report.slos) {
    const current =
      s.current === null
        ? 'no data'
        : s.current.unit === 'ratio'
          ? pct(s.current.value)
          : `${s.current.unit === 'ms' ? ms(s.current.value) : `${s.current.value.toFixed(1)} ops/s`}`;
    const firing = [
      ...s.alerts
        .filter((a) => a.firing)
        .map((a) => `${a.severity} burn ${a.longWindow}/${a.shortWindow} ≥ ${a.burnRate}x`),
      ...(s.thresholdAlert?.firing ? [`${s.thresholdAlert.severity}: ${s.thresholdAlert.action}`] : []),
    ];
    out.push(
      `| ${cell(s.title)} | ${s.status} | ${current} | ${pct(s.compliance)} | ${s.errorBudgetRemaining === null ? 'unknown' : pct(s.errorBudgetRemaining, 1)} | ${firing.join('; ') || '-'} |`,
    );
  }
  out.push('', '## Latency (merged HDR histograms, last 5 minutes)', '');
  out.push(
    '| indicator | events ok/failed | p50 | p95 | p99 | p99.9 | max | nodes |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const [name, m] of Object.entries(report.metrics)) {
    const r = m.recentMs;
    out.push(
      `| ${name} | ${m.success}/${m.failure} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${ms(r.p999)} | ${ms(r.max)} | ${m.nodes.join(', ')} |`,
    );
  }
  out.push('', '## Top errors', '');
  if (report.errors.length === 0) out.push('None.');
  else {
    out.push('| error type | count | nodes | last message |', '|---|---|---|---|');
    for (const e of report.errors)
      out.push(`| ${cell(e.type)} | ${e.count} | ${e.nodes.join(', ')} | ${cell(e.lastMessage.slice(0, 120))} |`);
  }
  out.push('', `## Recent failures (${report.operations.failures.length})`, '');
  for (const f of report.operations.failures.slice(-10)) {
    out.push(
      `- ${new Date(f.finishedAt).toISOString()} ${f.nodeId} ${f.type} ${f.id}: ${f.errorType ?? 'error'} ${f.errorMessage ?? ''}`.trimEnd(),
    );
  }
  out.push('', '## Logs', '');
  out.push(
    `${report.logs.totalRecords} records since ${new Date(report.logs.sinceWallMs).toISOString()} (or each node's newest ones, whichever is more), ordered by HLC, ${report.logs.duplicatesDropped} duplicates dropped.`,
    '',
    '| node | status | received | seq range | node last seq | missing | gaps |',
    '|---|---|---|---|---|---|---|',
  );
  for (const l of report.logs.completeness) {
    const gaps = [
      ...l.gaps.slice(0, 5).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)),
      ...l.skipped.map(([a, b]) => `skipped after a crash: ${a}-${b}`),
    ];
    out.push(
      `| ${cell(l.nodeId)} | ${l.status === 'complete' ? 'complete' : `**${l.status}**`}${l.truncatedBefore ? ' (cut at limit)' : ''} | ${l.received} | ${l.firstSeq ?? '-'}..${l.lastSeq ?? '-'} | ${l.nodeLastSeq ?? 'unknown'} | ${l.missing}${l.status === 'unavailable' ? ' + unknown' : ''} | ${gaps.join(', ')}${l.gaps.length > 5 ? ', …' : ''} |`,
    );
  }
  const tail = report.logs.records.slice(-(options.logTail ?? 20));
  if (tail.length) {
    out.push('', '```', ...tail.map((r) => `${r.hlc} ${r.node}#${r.seq} ${levelName(r.level)} ${r.msg ?? ''}`), '```');
  }
  return `${out.join('\n')}\n`;
}

function levelName(level: number): string {
  return (
    ({ 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' } as Record<number, string>)[level] ??
    String(level)
  );
}

/** One file of a debug bundle, as its manifest lists it. */
export interface BundleFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly nodeId: string | null;
  readonly description: string;
}

/** The bundle's manifest.json: what each node contributed, with hashes. */
export interface BundleManifest {
  readonly schema: 'unrdf.diagnostics.bundle/v1';
  readonly reportSchema: string;
  readonly generatedAt: string;
  readonly status: DiagnosticReport['status'];
  readonly nodes: readonly {
    readonly nodeId: string;
    readonly outcome: string;
    readonly error: string | null;
    readonly logRecords: number;
    readonly files: readonly string[];
  }[];
  readonly files: readonly BundleFile[];
}

const safeName = (id: string) => id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100) || '_';

/**
 * Writes a `.tar.gz` debug bundle (like `consul debug`): report.json, report.md,
 * the merged log, each node's own section and log, and manifest.json listing every
 * file with its size, SHA-256 and the node it came from.
 * @returns the manifest written into the bundle.
 */
export async function writeDebugBundle(report: DiagnosticReport, file: string): Promise<BundleManifest> {
  const staging = await mkdtemp(join(tmpdir(), 'unrdf-bundle-'));
  const root = 'unrdf-diagnostics';
  const files: BundleFile[] = [];
  const put = async (path: string, content: string, nodeId: string | null, description: string) => {
    const full = join(staging, root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
    const bytes = Buffer.byteLength(content);
    files.push({ path, bytes, sha256: createHash('sha256').update(content).digest('hex'), nodeId, description });
  };
  try {
    await put('report.json', `${JSON.stringify(report, null, 2)}\n`, null, 'the full report (validated JSON)');
    await put('report.md', renderReportMarkdown(report, { logTail: 50 }), null, 'the report for people');
    await put(
      'logs/merged.ndjson',
      report.logs.records.map((r) => JSON.stringify(r)).join('\n') + (report.logs.records.length ? '\n' : ''),
      null,
      'every node log record, deduplicated, ordered by HLC',
    );
    const nodes: BundleManifest['nodes'][number][] = [];
    const used = new Set<string>();
    for (const n of report.nodes) {
      // Two ids may sanitise alike ('a/b', 'a_b'): each node still gets its own folder.
      let name = safeName(n.nodeId);
      for (let i = 2; used.has(name); i++) name = `${safeName(n.nodeId)}-${i}`;
      used.add(name);
      const dir = `nodes/${name}`;
      const own: string[] = [];
      await put(
        `${dir}/node.json`,
        `${JSON.stringify(n, null, 2)}\n`,
        n.nodeId,
        'answer, health, resources, consensus',
      );
      own.push(`${dir}/node.json`);
      const records = report.logs.records.filter((r) => r.node === n.nodeId);
      if (records.length) {
        await put(
          `${dir}/logs.ndjson`,
          `${records.map((r) => JSON.stringify(r)).join('\n')}\n`,
          n.nodeId,
          "this node's log records",
        );
        own.push(`${dir}/logs.ndjson`);
      }
      nodes.push({ nodeId: n.nodeId, outcome: n.outcome, error: n.error, logRecords: records.length, files: own });
    }
    const manifest: BundleManifest = {
      schema: 'unrdf.diagnostics.bundle/v1',
      reportSchema: report.schema,
      generatedAt: report.generatedAt,
      status: report.status,
      nodes,
      files,
    };
    await writeFile(join(staging, root, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await mkdir(dirname(file), { recursive: true });
    await tar.create({ gzip: true, file, cwd: staging, portable: true }, [root]);
    return manifest;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
