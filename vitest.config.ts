import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The directory-server suites (389-ds, Samba AD) run with `npm run test:directories`.
    exclude: ['test/directories/**', '**/node_modules/**'],
    // Integration tests start real slapd/postfix processes; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
