import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["components/**/*.test.ts", "stacks/**/*.test.ts", "test/unit/**/*.test.ts"],
    globalSetup: ["test/helpers/tmpRoot.ts"],
    // Pulumi's runtime keeps global state per process; one file per worker keeps mocks apart.
    pool: "forks",
    testTimeout: 30000,
  },
});
