import { defineConfig } from 'vitest/config';

/**
 * The directory-server suites (test/directories: Samba AD, 389-ds): each provisions a real
 * server (tens of seconds) and runs a whole differential against native postmap, so they run
 * apart from `npm test` with `npm run test:directories`, one file at a time.
 */
export default defineConfig({
  test: {
    include: ['test/directories/**/*.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
  },
});
