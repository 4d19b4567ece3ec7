import { defaultServerConditions } from 'vite';

/**
 * Resolve workspace packages to their TypeScript source (the `@unrdf/source` export
 * condition), so tests never need a prior build. Spread into each project's config.
 */
export const sourceConditions = {
  resolve: { conditions: ['@unrdf/source', ...defaultServerConditions] },
  ssr: { resolve: { conditions: ['@unrdf/source', ...defaultServerConditions] } },
} as const;
