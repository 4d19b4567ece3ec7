import type { AppendResponse, Message, NodeId } from '../types.js';

/**
 * Drops each successful append acknowledgement that a later one in the same batch, to the
 * same peer in the same term, supersedes (an equal or higher matching index): a follower
 * that took several appends in one Ready then answers once. Dropping is safe because Raft
 * tolerates lost messages, and the kept one tells the leader at least as much (Raft §5.3:
 * success at index i means the logs match up to i). Rejections and every other message
 * are kept, in order.
 */
export function supersedeAcks(messages: readonly Message[]): readonly Message[] {
  const last = new Map<NodeId, AppendResponse>();
  for (const m of messages) if (m.type === 'appendResponse' && m.success) last.set(m.to, m);
  if (last.size === 0) return messages;
  return messages.filter((m) => {
    if (m.type !== 'appendResponse' || !m.success) return true;
    const final = last.get(m.to) as AppendResponse;
    return m === final || final.term !== m.term || final.index < m.index;
  });
}
