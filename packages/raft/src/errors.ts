import type { NodeId } from './types.js';

/** Base class of every error this package throws; `code` is stable across versions. */
export abstract class RaftError extends Error {
  abstract readonly code: string;
}

/** A proposal or read reached a server that is not the leader. */
export class NotLeaderError extends RaftError {
  override readonly name = 'NotLeaderError';
  readonly code = 'UNRDF_RAFT_NOT_LEADER';
  readonly leaderId: NodeId | undefined;
  constructor(leaderId: NodeId | undefined, options?: ErrorOptions) {
    super(
      `This node is not the leader${leaderId ? `; send to ${leaderId}` : '; retry once a leader is elected'}.`,
      options,
    );
    this.leaderId = leaderId;
  }
}

/** The leader is handing over leadership and refuses new proposals until that ends. */
export class LeadershipTransferError extends RaftError {
  override readonly name = 'LeadershipTransferError';
  readonly code = 'UNRDF_RAFT_TRANSFER_IN_PROGRESS';
  readonly transferee: NodeId;
  constructor(transferee: NodeId, options?: ErrorOptions) {
    super(`Leadership is being transferred to ${transferee}; retry against the new leader.`, options);
    this.transferee = transferee;
  }
}

/** The host drove the core out of order (e.g. took a second Ready before advancing the first). */
export class RaftUsageError extends RaftError {
  override readonly name = 'RaftUsageError';
  readonly code = 'UNRDF_RAFT_USAGE';
}

/** A membership change was refused (another is in flight, or it is not a valid single step). */
export class ConfigChangeError extends RaftError {
  override readonly name = 'ConfigChangeError';
  readonly code = 'UNRDF_RAFT_CONFIG_CHANGE';
}

/**
 * A proposal too large to replicate: its entry could not fit one frame of the peer
 * transport, so no follower could ever receive it. Split the command.
 */
export class ProposalTooLargeError extends RaftError {
  override readonly name = 'ProposalTooLargeError';
  readonly code = 'UNRDF_RAFT_PROPOSAL_TOO_LARGE';
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, options?: ErrorOptions) {
    super(
      `The proposal is ${size} bytes, over the limit of ${limit} bytes per log entry; split it into smaller commands.`,
      options,
    );
    this.size = size;
    this.limit = limit;
  }
}
