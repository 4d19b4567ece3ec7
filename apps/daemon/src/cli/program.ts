import { readFileSync, writeFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { DEFAULT_HTTP_THREADS, DEFAULT_RATE_LIMIT } from '../http/defaults.js';
import { type OperationViewBody, OperationViewSchema, ReceiptBundleBodySchema } from '../http/schemas.js';
import * as api from './api.js';
import { type ClientOptions, type ClientResponse, request } from './client.js';
import { CliError, failure, usageError, zodLines } from './errors.js';
import { DEFAULT_HOST, DEFAULT_PORT, resolveDataDir, resolveToken, resolveUrl } from './paths.js';
import { loadTrustedKeys } from './trusted-keys.js';
import { readBundleFile, verifyBundle } from './verify.js';

/** Where a command writes: stdout for results, stderr for people. */
export interface CliIo {
  readonly stdout: { write(text: string | Uint8Array): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const FINAL_STATES = new Set(['completed', 'dead', 'cancelled']);

const OperationIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,200}$/, 'an operation id: 1-200 letters, digits and . _ : -')
  // A URL path segment of only dots is resolved away ("." and ".." are dot-segments, RFC 3986 §5.2.4).
  .refine((id) => !/^\.+$/.test(id), 'an operation id is not only dots');

const intOption = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!/^-?[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${name}: expected an integer from ${min} to ${max}.`);
  }
  return n;
};

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

interface ClientFlags {
  readonly url?: string;
  readonly token?: string;
  readonly dataDir?: string;
  readonly json?: boolean;
}

function withClientOptions(command: Command): Command {
  return command
    .option('--url <url>', 'daemon URL (default $UNRDF_URL, else http://127.0.0.1:8787)')
    .option('--token <token>', 'bearer token (default $UNRDF_TOKEN, else <data-dir>/admin.token)')
    .option('--data-dir <dir>', 'where to find admin.token (default $UNRDF_DATA_DIR, else ./.unrdf)')
    .option('--json', 'machine-readable output (JSON)');
}

function clientOf(flags: ClientFlags, io: CliIo): ClientOptions {
  const url = resolveUrl(flags.url, io.env);
  const checked = z.url({ protocol: /^https?$/ }).safeParse(url);
  if (!checked.success) throw usageError('bad option', zodLines(checked.error, '--url'));
  return { url, token: resolveToken(flags.token, resolveDataDir(flags.dataDir, io.env), io.env) };
}

function parseInput(flags: { input?: string; inputFile?: string }): unknown {
  if (flags.input !== undefined && flags.inputFile !== undefined) {
    throw usageError('bad option', ['--input: give --input or --input-file, not both']);
  }
  let text: string | undefined = flags.input;
  let where = '--input';
  if (flags.inputFile !== undefined) {
    where = '--input-file';
    try {
      text = readFileSync(flags.inputFile, 'utf8');
    } catch (error) {
      throw usageError('bad option', [`--input-file: cannot read ${flags.inputFile}: ${(error as Error).message}`]);
    }
  }
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usageError('bad option', [`${where}: not valid JSON: ${(error as Error).message}`]);
  }
}

const SubmitFlagsSchema = z.object({
  type: z.string().min(1).max(100),
  subject: z.string().min(1).max(1024),
  idempotencyKey: z.string().min(1).max(500).optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
});

/** Parses an answer of the daemon with the API's own wire schema; anything else is a failure (1). */
function answer<T>(schema: z.ZodType<T>, response: ClientResponse, what: string): T {
  const parsed = schema.safeParse(response.json);
  if (!parsed.success) {
    throw new CliError(`the daemon's answer is not ${what} (is --url an unrdf daemon?)`, 1, zodLines(parsed.error));
  }
  return parsed.data;
}

/** Waits (long polls, bounded by timeoutMs) until the operation is final and its receipt durable. */
async function waitFinal(
  client: ClientOptions,
  id: string,
  timeoutMs: number,
  /** The whole wait to report when giving up (when an earlier request already waited). */
  totalMs = timeoutMs,
): Promise<OperationViewBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const waitMs = Math.max(0, Math.min(api.MAX_WAIT_MS, left));
    const response = await request(
      { ...client, timeoutMs: waitMs + 10_000 },
      'GET',
      `${api.operationPath(id)}?wait=${waitMs}`,
      undefined,
      { allow: [403] },
    );
    if (response.status === 403) {
      throw failure(
        `operation ${id} was accepted, but this token may not read it (no 'read' scope), so its outcome cannot be awaited; follow it with a token that has 'read': unrdf-daemon status ${id}`,
      );
    }
    const view = answer(OperationViewSchema, response, 'an operation');
    if (FINAL_STATES.has(view.state) && view.receipt !== null) return view;
    if (Date.now() >= deadline) {
      throw failure(
        `operation ${id} is still ${view.state} after ${totalMs} ms; check later: unrdf-daemon status ${id}`,
      );
    }
  }
}

/** Writes `--out`; a path that cannot be written is a usage error (2), not a stack trace. */
function writeOut(path: string, data: string | Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (error) {
    throw usageError('bad option', [`--out: cannot write ${path}: ${(error as Error).message}`], { cause: error });
  }
}

function printOperation(io: CliIo, view: OperationViewBody, json: boolean | undefined): void {
  if (json) {
    io.stdout.write(`${JSON.stringify(view)}\n`);
    return;
  }
  const receipt = view.receipt;
  const lines = [
    `id:       ${view.id}`,
    `type:     ${view.type}`,
    `subject:  ${view.subject}`,
    `state:    ${view.state}${view.outcome ? ` (${view.outcome})` : ''}`,
    `attempts: ${view.attempts}/${view.maxAttempts}`,
  ];
  if (view.error) lines.push(`error:    ${JSON.stringify(view.error)}`);
  if (view.output !== null && view.output !== undefined) lines.push(`output:   ${JSON.stringify(view.output)}`);
  if (receipt) lines.push(`receipt:  leaf ${receipt.leafIndex}, hash ${receipt.receiptHash}`);
  io.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * The `unrdf-daemon` command line. Actions throw {@link CliError} for what the user must
 * fix (2) or what failed (1); {@link runCli} turns that into the exit code.
 */
export function createProgram(io: CliIo): Command {
  const program = new Command('unrdf-daemon')
    .description('The unrdf daemon: background operations with receipts you can verify offline.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)');

  program
    .command('start')
    .description('Start a single-node daemon (embedded SQLite in the data directory) with its HTTP API.')
    .option('--data-dir <dir>', 'data directory (default $UNRDF_DATA_DIR, else ./.unrdf where you ran the command)')
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .addOption(
      new Option('--port <port>', 'TCP port (0: any free port)')
        .default(DEFAULT_PORT)
        .argParser(intOption('--port', 0, 65_535)),
    )
    .option('--node-id <id>', "this node's id in receipts, logs and metrics (default node-1)")
    .option('--handlers <module...>', 'extra handler modules (export `handlers`: { type: { handler, ...policy } })')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(
      new Option('--drain-ms <ms>', 'on shutdown, how long running handlers may finish')
        .default(10_000)
        .argParser(intOption('--drain-ms', 0, 600_000)),
    )
    .addOption(
      new Option('--concurrency <n>', 'handlers running at once, all types together')
        .default(1000)
        .argParser(intOption('--concurrency', 1, 100_000)),
    )
    .addOption(
      new Option('--rate-limit <n>', 'requests per minute per API token (0: no limit)')
        .default(DEFAULT_RATE_LIMIT.max)
        .argParser(intOption('--rate-limit', 0, 1_000_000_000)),
    )
    .addOption(
      new Option('--http-threads <n>', 'HTTP API threads besides the daemon thread (0: all on one thread)')
        .default(DEFAULT_HTTP_THREADS)
        .argParser(intOption('--http-threads', 0, 1)),
    )
    .action(async (flags) => {
      // Loaded here, not at the top: the server, the daemon and its telemetry are what make
      // a start slow, and no other command needs them.
      const { runStart } = await import('./start.js');
      await runStart(
        {
          dataDir: resolveDataDir(flags.dataDir, io.env),
          host: flags.host,
          port: flags.port,
          nodeId: flags.nodeId,
          handlerModules: flags.handlers,
          logLevel: flags.logLevel,
          drainMs: flags.drainMs,
          concurrency: flags.concurrency,
          rateLimitPerMinute: flags.rateLimit,
          httpThreads: flags.httpThreads,
        },
        io,
      );
    });

  withClientOptions(
    program
      .command('submit')
      .description('Submit an operation to a running daemon (prints its id; --wait for the outcome and receipt).')
      .requiredOption('--type <type>', 'operation type (create, update, delete, batch, sleep, …)')
      .requiredOption('--subject <subject>', 'the entity it acts on (an IRI for the RDF types)')
      .option('--input <json>', 'the input, JSON text')
      .option('--input-file <file>', 'the input, a JSON file')
      .option('--idempotency-key <key>', 'a retried submit with the same key returns the original operation')
      .addOption(new Option('--priority <n>', 'higher runs first').argParser(intOption('--priority', -1000, 1000)))
      .option('--wait', 'wait until the operation is final and its receipt durable')
      .addOption(
        new Option('--timeout <ms>', 'with --wait: give up after this long')
          .default(60_000)
          .argParser(intOption('--timeout', 1, 3_600_000)),
      ),
  ).action(async (flags) => {
    const checked = SubmitFlagsSchema.safeParse(flags);
    if (!checked.success) {
      throw usageError(
        'bad option',
        zodLines(checked.error).map((l) => `--${l.replace(/^([a-zA-Z]+)/, kebab)}`),
      );
    }
    const input = parseInput(flags);
    const client = clientOf(flags, io);
    const body = {
      type: checked.data.type,
      subject: checked.data.subject,
      ...(input === undefined ? {} : { input }),
      ...(checked.data.idempotencyKey === undefined ? {} : { idempotencyKey: checked.data.idempotencyKey }),
      ...(checked.data.priority === undefined ? {} : { priority: checked.data.priority }),
    };
    // With --wait the POST itself waits (?wait=…, one round trip); a longer --timeout
    // goes on with GET ?wait long polls.
    const firstWaitMs = flags.wait ? Math.min(api.MAX_WAIT_MS, flags.timeout) : 0;
    const accepted = answer(
      OperationViewSchema,
      await request(
        firstWaitMs > 0 ? { ...client, timeoutMs: firstWaitMs + 10_000 } : client,
        'POST',
        firstWaitMs > 0 ? `${api.OPERATIONS}?wait=${firstWaitMs}` : api.OPERATIONS,
        body,
      ),
      'an operation',
    );
    if (!flags.wait) {
      if (flags.json) io.stdout.write(`${JSON.stringify(accepted)}\n`);
      else io.stdout.write(`${accepted.id}\n`);
      return;
    }
    const view =
      FINAL_STATES.has(accepted.state) && accepted.receipt !== null
        ? accepted
        : await waitFinal(client, accepted.id, flags.timeout - firstWaitMs, flags.timeout);
    printOperation(io, view, flags.json);
    if (view.state !== 'completed') {
      throw failure(`operation ${view.id} ended ${view.state}: ${JSON.stringify(view.error)}`);
    }
  });

  withClientOptions(
    program
      .command('status')
      .description("An operation's state, or (without an id) the node's health, readiness and checkpoint size.")
      .argument('[id]', 'operation id'),
  ).action(async (id: string | undefined, flags) => {
    const client = clientOf(flags, io);
    if (id !== undefined) {
      const checked = OperationIdSchema.safeParse(id);
      if (!checked.success) throw usageError('bad argument', zodLines(checked.error, 'id'));
      printOperation(
        io,
        answer(OperationViewSchema, await request(client, 'GET', api.operationPath(id)), 'an operation'),
        flags.json,
      );
      return;
    }
    const livez = await request(client, 'GET', api.LIVEZ, undefined, { allow: [503] });
    const readyz = await request(client, 'GET', api.READYZ, undefined, { allow: [503] });
    const checkpoint = await request(client, 'GET', api.CHECKPOINT, undefined, { allow: [404] });
    const treeSize = checkpoint.status === 404 ? 0 : checkpointSize(checkpoint.text || String(checkpoint.json ?? ''));
    const node = {
      url: client.url,
      live: livez.status === 200,
      ready: readyz.status === 200,
      treeSize,
      livez: livez.json ?? livez.text,
      readyz: readyz.json ?? readyz.text,
    };
    if (flags.json) io.stdout.write(`${JSON.stringify(node)}\n`);
    else {
      io.stdout.write(
        `${client.url}: ${node.live ? 'live' : 'NOT live'}, ${node.ready ? 'ready' : 'NOT ready'}; checkpoint tree size ${treeSize}\n`,
      );
    }
    if (!node.ready) throw failure(`the daemon at ${client.url} is not ready`);
  });

  withClientOptions(
    program
      .command('receipt')
      .description("Fetch an operation's receipt bundle (receipt, inclusion proof, signed checkpoint).")
      .argument('<id>', 'operation id')
      .option('--out <file>', 'write the bundle here (default: stdout)'),
  ).action(async (id: string, flags) => {
    const checked = OperationIdSchema.safeParse(id);
    if (!checked.success) throw usageError('bad argument', zodLines(checked.error, 'id'));
    const response = await request(clientOf(flags, io), 'GET', api.receiptPath(id));
    const bundle = answer(ReceiptBundleBodySchema, response, 'a receipt bundle');
    const text = `${JSON.stringify({ receipt: bundle.receipt, proof: bundle.proof, checkpoint: bundle.checkpoint }, null, 2)}\n`;
    if (flags.out === undefined) {
      io.stdout.write(text);
      return;
    }
    writeOut(flags.out, text);
    if (flags.json) io.stdout.write(`${JSON.stringify({ id, out: flags.out })}\n`);
    else io.stderr.write(`wrote the receipt bundle of ${id} to ${flags.out}\n`);
  });

  withClientOptions(
    program
      .command('report')
      .description('Fetch the diagnostic report (health, metrics, SLOs, logs).')
      .addOption(
        new Option('--format <format>', 'md, json or tar (a .tar.gz debug bundle)')
          .choices(['md', 'json', 'tar'])
          .default('md'),
      )
      .option('--out <file>', 'write it here (default: stdout; tar needs --out, e.g. report.tar.gz)'),
  ).action(async (flags, command: Command) => {
    // --json is the JSON report (--format json); with another --format given it is a contradiction.
    if (flags.json && command.getOptionValueSource('format') === 'cli' && flags.format !== 'json') {
      throw usageError('bad option', [`--json: the report as JSON; it cannot go with --format ${flags.format}`]);
    }
    const format: string = flags.json ? 'json' : flags.format;
    if (format === 'tar' && flags.out === undefined) {
      throw usageError('bad option', ['--out: a tar report is binary; give --out report.tar.gz']);
    }
    const response = await request(clientOf(flags, io), 'GET', `${api.DIAGNOSTICS}?format=${format}`);
    const bytes = response.bytes;
    if (flags.out === undefined) io.stdout.write(bytes);
    else {
      writeOut(flags.out, bytes);
      io.stderr.write(`wrote the ${format} report (${bytes.length} bytes) to ${flags.out}\n`);
    }
  });

  program
    .command('verify')
    .description(
      'Verify receipt bundles offline (no daemon): exit 0 when every one is valid, 1 when one is invalid or inconclusive, 2 for a bad file.',
    )
    .argument('<bundles...>', 'bundle files (from `receipt --out` or GET /v1/operations/:id/receipt)')
    .option(
      '--key <key>',
      'trusted verifier key: a .vkey file, a keys JSON (GET /v1/keys, <data-dir>/keys/keys.json) or the key text; repeatable',
      collect,
    )
    .option('--json', 'machine-readable output (one JSON line per bundle)')
    .action((paths: string[], flags) => {
      const keys = loadTrustedKeys(flags.key ?? []);
      // Read every file first: a bad file is a usage error (2) whatever the others say.
      const bundles = paths.map((path) => ({ path, bundle: readBundleFile(path) }));
      let rejected = 0;
      for (const { path, bundle } of bundles) {
        const report = verifyBundle(bundle, keys);
        if (report.verdict.status !== 'valid') rejected++;
        if (flags.json) io.stdout.write(`${JSON.stringify({ file: path, ...report })}\n`);
        else if (report.verdict.status === 'valid') {
          io.stdout.write(
            `valid: operation ${String(report.operationId)} is leaf ${String(report.leafIndex)} of the signed tree of size ${String(report.treeSize)}\n`,
          );
        } else io.stdout.write(`${report.verdict.status}: ${path}: ${report.verdict.reason}\n`);
      }
      if (rejected > 0) {
        throw new CliError(`${rejected} of ${bundles.length} receipt bundles did not verify`, 1);
      }
    });

  const keys = program.command('keys').description("Manage the ledger's signing keys.");
  keys
    .command('rotate')
    .description(
      'Add a new signing key for tree sizes after the current ledger (the daemon must be stopped; old receipts keep verifying).',
    )
    .option('--data-dir <dir>', 'data directory (default $UNRDF_DATA_DIR, else ./.unrdf)')
    .option('--json', 'machine-readable output (JSON)')
    .action(async (flags) => {
      const { rotateKeys } = await import('./keys.js');
      const rotated = await rotateKeys(resolveDataDir(flags.dataDir, io.env));
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(rotated)}\n`);
        return;
      }
      io.stdout.write(`${rotated.verifierKey}\n`);
      io.stderr.write(
        `new signing key for tree sizes from ${rotated.fromSize}; verifier key file ${rotated.verifierKeyPath}\n` +
          'verifiers need the whole key list (GET /v1/keys or <data-dir>/keys/keys.json) to check older receipts\n',
      );
    });

  return program;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The tree size of a C2SP checkpoint note (its second line). */
function checkpointSize(note: string): number {
  const line = note.split('\n')[1] ?? '';
  return /^[0-9]+$/.test(line) ? Number(line) : 0;
}

/**
 * Runs the CLI on `argv` (user arguments, without node and the script) and resolves with
 * the exit code: 0 ok, 1 failure, 2 usage error or bad input.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  if (argv.length === 0) {
    io.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help (--help, `help`, `help <command>`) and version print and succeed (commander
      // gives them exit code 0); every other commander error is a usage error (already printed).
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CliError) {
      io.stderr.write(`unrdf-daemon: ${error.message}\n${error.issues.map((l) => `  ${l}\n`).join('')}`);
      return error.exitCode;
    }
    io.stderr.write(`unrdf-daemon: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
