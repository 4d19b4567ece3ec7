import type { Command, CommandKind, CommandOf, ResultOf } from './commands.js';
import { QueueClosedError } from './errors.js';
import type { StateMachine } from './state-machine.js';

/**
 * The path that makes a command durable and applies it. Locally it is a group-commit
 * writer over the state machine's SQLite store; in a cluster the daemon plugs in the
 * Raft log, whose every replica applies the committed command to its own state machine.
 */
export interface CommitPath {
  /**
   * Resolves with the command's result only once the command is durable (committed)
   * and applied; rejects with what apply threw.
   */
  submit<K extends CommandKind>(command: CommandOf<K>): Promise<ResultOf<K>>;
  /** Commits what was submitted, then refuses more. */
  close(): Promise<void>;
}

export interface GroupCommitOptions {
  /**
   * 0 (default): one transaction per event-loop turn. 1-2: wait up to this many
   * milliseconds to gather a larger batch (fewer fsyncs, a little more latency).
   */
  readonly windowMs?: number;
  /** Flush at once when this many commands wait (bounds a transaction's length). */
  readonly maxBatch?: number;
}

interface Waiter {
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

/**
 * A group-commit writer: every command submitted during one event-loop turn (or one
 * short window) goes into one `BEGIN IMMEDIATE … COMMIT`, one fsync for the lot
 * (the technique of DeWitt et al. 1984 and of every WAL database since), and the
 * callers hear back only after COMMIT returned.
 * @example
 * const path = createGroupCommitPath(stateMachine);
 * const { created } = await path.submit({ kind: 'enqueue', ... });
 */
export function createGroupCommitPath(stateMachine: StateMachine, options: GroupCommitOptions = {}): CommitPath {
  const windowMs = options.windowMs ?? 0;
  const maxBatch = options.maxBatch ?? 4096;
  let commands: Command[] = [];
  let waiters: Waiter[] = [];
  let scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  let closed = false;

  const flush = (): void => {
    if (scheduled !== undefined) {
      if (windowMs > 0) clearTimeout(scheduled as NodeJS.Timeout);
      else clearImmediate(scheduled as NodeJS.Immediate);
      scheduled = undefined;
    }
    if (commands.length === 0) return;
    const batch = commands;
    const batchWaiters = waiters;
    commands = [];
    waiters = [];
    let outcomes: ReturnType<StateMachine['applyBatch']>;
    try {
      outcomes = stateMachine.applyBatch(batch);
    } catch (error) {
      // BEGIN or COMMIT itself failed (disk full, I/O error): nothing is durable.
      for (const waiter of batchWaiters) waiter.reject(error);
      return;
    }
    for (let i = 0; i < batchWaiters.length; i++) {
      const outcome = outcomes[i];
      const waiter = batchWaiters[i] as Waiter;
      if (outcome?.ok) waiter.resolve(outcome.result);
      else waiter.reject(outcome?.error ?? new Error('no outcome for command'));
    }
  };

  return {
    submit<K extends CommandKind>(command: CommandOf<K>): Promise<ResultOf<K>> {
      if (closed) return Promise.reject(new QueueClosedError());
      return new Promise<ResultOf<K>>((resolve, reject) => {
        commands.push(command);
        waiters.push({ resolve: resolve as (result: unknown) => void, reject });
        if (commands.length >= maxBatch) flush();
        else if (scheduled === undefined) {
          scheduled = windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush);
        }
      });
    },
    async close() {
      flush();
      closed = true;
    },
  };
}
