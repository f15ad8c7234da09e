import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    pool: "forks",
    // One VM, used by one file at a time, in order.
    fileParallelism: false,
    // Under TCG a step that takes 2 s on hardware can take 30 s.
    testTimeout: 30 * 60 * 1000,
    hookTimeout: 15 * 60 * 1000,
  },
});
