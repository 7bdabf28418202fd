import { defineConfig } from 'vitest/config';

/**
 * The project's own tests. `unit` needs nothing but Node; `e2e` boots real VMs through bin/lab
 * (one file at a time: two cores are busy enough with one TCG guest).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
