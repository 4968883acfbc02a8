import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests run against each package's `src` through the `@understudy/source` export condition,
// so no build is needed between an edit and a test run.
const conditions = ['@understudy/source', ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    globalSetup: ['packages/testkit/src/vitest/global.ts'],
    setupFiles: ['packages/testkit/src/vitest/setup.ts'],
    reporters: ['default', 'packages/testkit/src/vitest/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: one test file per core keeps timing tests honest.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'] } },
      { extends: true, test: { name: 'cli', include: ['packages/cli/test/**/*.test.ts'] } },
      { extends: true, test: { name: 'testkit', include: ['packages/testkit/test/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'] } },
    ],
  },
});
