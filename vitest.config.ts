import { defineConfig } from 'vitest/config';

// unit tests need no Docker; integration tests build images and start containers and prove the image;
// figures measure what an option costs; release and reliability run on demand.
export default defineConfig({
  test: {
    reporters: ['default', 'junit', './test/helpers/summary-reporter.ts'],
    outputFile: { junit: 'reports/junit.xml' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [
            'test/integration/**',
            'test/figures/**',
            'test/reliability/**',
            'test/release/**',
            'node_modules/**',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          // Each file works on networks and containers of its own, and mostly waits on the engine and
          // the network: several files at once keep 2 cores busy (images are built once, in the setup).
          testTimeout: 120_000,
          hookTimeout: 900_000,
          maxWorkers: 4,
          // After the unit tests (a project with its own worker count needs its own group).
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // Measurements, not checks: run alone, so that nothing else competes for the cores they measure.
          name: 'figures',
          include: ['test/figures/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'release',
          include: ['test/release/**/*.test.ts'],
          testTimeout: 900_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'reliability',
          include: ['test/reliability/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
