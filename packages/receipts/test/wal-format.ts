/**
 * 0-based index of the first commit frame (a frame header with a nonzero "size of the
 * database after the commit") whose salts match the WAL header's, or -1 when none does
 * (https://sqlite.org/fileformat2.html#walformat: the header's salts at bytes 16 and 20,
 * each frame's commit size at 4 and salts at 8 and 12 of its 24-byte header).
 */
export function firstCommitFrame(wal: Buffer, pageSize: number): number {
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  for (let i = 0, at = 32; at + 24 <= wal.length; i++, at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) return -1;
    if (wal.readUInt32BE(at + 4) !== 0) return i;
  }
  return -1;
}
