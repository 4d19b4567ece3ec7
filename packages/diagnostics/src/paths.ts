/** HTTP paths the node's diagnostics handler answers. */
export const DIAGNOSTICS_PATHS = {
  livez: '/livez',
  readyz: '/readyz',
  snapshot: '/diagnostics/snapshot',
} as const;
