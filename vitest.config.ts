import { defineConfig } from 'vitest/config';

/** The e2e files that each keep a two-node Kubernetes cluster up through their tests. */
const CLUSTER_FILES = ['two-node-flocker', 'two-node', 'vxlan', 'openstack'].map((name) => `test/e2e/${name}.test.ts`);

/**
 * The project's own tests. `unit` needs nothing but Node; the e2e files boot real VMs through
 * bin/lab, one file at a time per project: `e2e-clusters` holds the kept two-node clusters,
 * `e2e-machines` the rest (one or two small VMs each). `npm test` (test/lanes) runs the two side
 * by side: a kept cluster idles at under a core between its checks, which the other lane uses;
 * `vitest run` alone runs them one after the other.
 */
const e2e = { globalSetup: ['test/e2e/global-setup.ts'], fileParallelism: false, testTimeout: 600_000, hookTimeout: 900_000 };

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
      { test: { name: 'e2e-clusters', include: CLUSTER_FILES, ...e2e } },
      { test: { name: 'e2e-machines', include: ['test/e2e/**/*.test.ts'], exclude: CLUSTER_FILES, ...e2e } },
    ],
  },
});
