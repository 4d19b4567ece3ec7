import type { ClusterConfig, Entry, Message } from '../types.js';

/**
 * Wire form of a Raft message: a JSON header (the message without entry payloads, plus
 * each entry's index, term and payload length) followed by the raw entry payloads, so
 * 256-byte commands are not base64-inflated.
 *
 *   u32 headerLength | header (UTF-8 JSON) | payload bytes of entry 0 | entry 1 | ...
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** index, term, payload length, and 1 for a membership entry. */
type EntryMeta = [index: number, term: number, length: number, config?: 1];

export function encodeMessage(message: Message): Uint8Array {
  let header: string;
  let payloads: readonly Entry[] = [];
  if (message.type === 'append') {
    payloads = message.entries;
    const meta: EntryMeta[] = message.entries.map((e) =>
      e.kind === 'config' ? [e.index, e.term, e.data.length, 1] : [e.index, e.term, e.data.length],
    );
    header = JSON.stringify({ ...message, entries: meta });
  } else if (message.type === 'snapshot') {
    // The image travels raw after the header, like entry payloads.
    const { index, term, data, config } = message.snapshot;
    payloads = [{ index, term, data }];
    header = JSON.stringify({ ...message, snapshot: { index, term, length: data.length, config } });
  } else {
    header = JSON.stringify(message);
  }
  const headerBytes = encoder.encode(header);
  let size = 4 + headerBytes.length;
  for (const entry of payloads) size += entry.data.length;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, headerBytes.length);
  out.set(headerBytes, 4);
  let offset = 4 + headerBytes.length;
  for (const entry of payloads) {
    out.set(entry.data, offset);
    offset += entry.data.length;
  }
  return out;
}

/** @throws {Error} on a malformed frame. */
export function decodeMessage(bytes: Uint8Array): Message {
  if (bytes.length < 4) throw new Error('frame too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0);
  if (4 + headerLength > bytes.length) throw new Error('header overruns the frame');
  const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + headerLength))) as Record<string, unknown>;
  if (typeof header.type !== 'string' || typeof header.from !== 'string' || typeof header.to !== 'string') {
    throw new Error('not a Raft message');
  }
  if (header.type === 'snapshot') {
    const meta = header.snapshot as { index: number; term: number; length: number; config?: ClusterConfig };
    const start = 4 + headerLength;
    if (start + meta.length > bytes.length) throw new Error('snapshot overruns the frame');
    const data = new Uint8Array(meta.length);
    data.set(bytes.subarray(start, start + meta.length));
    // The membership travels with the image (a snapshot that dropped it would restore the
    // initial peers on a follower of a reconfigured cluster).
    return {
      ...(header as unknown as Message & { type: 'snapshot' }),
      snapshot:
        meta.config === undefined
          ? { index: meta.index, term: meta.term, data }
          : { index: meta.index, term: meta.term, data, config: meta.config },
    };
  }
  if (header.type !== 'append') return header as unknown as Message;
  const meta = header.entries as EntryMeta[];
  if (!Array.isArray(meta)) throw new Error('append without entries');
  let offset = 4 + headerLength;
  const entries: Entry[] = meta.map(([index, term, length, config]) => {
    if (offset + length > bytes.length) throw new Error('entry overruns the frame');
    // Copy into a plain Uint8Array: the frame may be a view of a larger reused Buffer.
    const data = new Uint8Array(length);
    data.set(bytes.subarray(offset, offset + length));
    offset += length;
    return config === 1 ? { index, term, data, kind: 'config' } : { index, term, data };
  });
  return { ...(header as unknown as Message & { type: 'append' }), entries };
}
