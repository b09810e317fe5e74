import { defineConfig } from 'vitest/config';

/**
 * The slow directory-server suites (389-ds, Samba AD, ...): each creates a whole server instance,
 * so they run apart from `npm test` with `npm run test:directories`, one file at a time.
 */
export default defineConfig({
  test: {
    include: ['test/directories/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
  },
});
