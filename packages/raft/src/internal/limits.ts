/**
 * Size limits shared by the core (which builds appends) and the TCP transport (which
 * frames them), so the core never produces a message the transport cannot carry.
 */

/** Largest frame on a peer's raft stream; a snapshot is chunked, so it is not bounded by this. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * Room left in a frame for everything but entry payloads: the MAC, the message's JSON
 * header (ids, indexes, and a short index/term/length record per entry).
 */
const APPEND_FRAME_OVERHEAD_BYTES = 256 * 1024;

/** Largest entry payload (and byte budget of one append) that still fits one frame. */
export const MAX_ENTRY_BYTES = MAX_FRAME_BYTES - APPEND_FRAME_OVERHEAD_BYTES;

/** What one entry of an append costs in its frame besides its payload (the JSON header's record). */
export const ENTRY_FRAME_OVERHEAD_BYTES = 64;
