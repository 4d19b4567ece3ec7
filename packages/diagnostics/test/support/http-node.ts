import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ConsensusView,
  createHealth,
  createMetrics,
  createNodeDiagnostics,
  createNodeLogger,
  type Hlc,
  type NodeLogger,
  pingCheck,
  queueAcceptingCheck,
} from '../../src/index.js';

/** Starts an HTTP server on a free loopback port; resolves with its base URL. */
export async function listen(
  handler: RequestListener,
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestNode extends AsyncDisposable {
  readonly id: string;
  readonly url: string;
  readonly log: NodeLogger;
  readonly metrics: ReturnType<typeof createMetrics>;
  consensus: ConsensusView | null;
  ready: boolean;
  close(): Promise<void>;
}

/** A real diagnostics node in this process: pino logger, health, metrics, served over loopback HTTP. */
export async function startTestNode(
  id: string,
  options: { consensus?: ConsensusView | null; hlc?: Hlc; segmentDir?: string; ringSize?: number } = {},
): Promise<TestNode> {
  const log = createNodeLogger({
    nodeId: id,
    ...(options.hlc ? { hlc: options.hlc } : {}),
    ...(options.segmentDir ? { segmentDir: options.segmentDir } : {}),
    ringSize: options.ringSize ?? 50_000,
  });
  const metrics = createMetrics();
  const state = { ready: true };
  const health = createHealth({
    checks: [pingCheck(), queueAcceptingCheck(() => ({ accepting: state.ready }))],
    intervalMs: 20,
  });
  await health.refresh();
  const node: TestNode = {
    id,
    url: '',
    log,
    metrics,
    consensus: options.consensus ?? null,
    get ready() {
      return state.ready;
    },
    set ready(value: boolean) {
      state.ready = value;
    },
    close: async () => undefined,
    [Symbol.asyncDispose]: async () => node.close(),
  };
  const diagnostics = createNodeDiagnostics({
    nodeId: id,
    version: '1.2.3',
    logger: log,
    health,
    metrics,
    consensus: () => node.consensus,
  });
  const http = await listen((req, res) => {
    if (!diagnostics.handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  Object.assign(node, {
    url: http.url,
    close: async () => {
      await http.close();
      await diagnostics.close();
      await health.close();
      await log.close();
    },
  });
  return node;
}

/** A raft view for tests: `leader` leads `term`, every member applied up to `applied[id]`. */
export function view(
  self: string,
  leader: string | null,
  term: number,
  members: string[],
  applied = 100,
): ConsensusView {
  return {
    role: self === leader ? 'leader' : 'follower',
    term,
    leaderId: leader,
    commitIndex: 100,
    appliedIndex: applied,
    lastLogIndex: 100,
    members: members.map((id) => ({ id, voter: true })),
  };
}
