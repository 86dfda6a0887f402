import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    passWithNoTests: false,
    // The files wait on child processes and databases, not on this process's CPU: run them all
    // at once even on a 2-CPU runner (vitest's default would be one worker there).
    maxWorkers: 4,
    fileParallelism: true,
  },
});
