import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests share one PostgreSQL; each file uses its own schema
    // or tables, but two cores do not gain from more workers than that.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
