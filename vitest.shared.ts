import { defaultServerConditions, type UserConfig } from 'vite';

const conditions = ['@unrdf/source', ...defaultServerConditions];

/**
 * Resolve workspace packages to their TypeScript source (the `@unrdf/source` export
 * condition), so tests never need a prior build. Spread into each project's config.
 */
export const sourceConditions: Pick<UserConfig, 'resolve' | 'ssr'> = {
  resolve: { conditions },
  ssr: { resolve: { conditions } },
};
