import { describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { runWithMocks } from "../helpers/pulumiMocks";

/** Runs the program; returns what it threw and every resource it registered before that. */
async function attempt(config: Record<string, string>) {
  let error: Error | undefined;
  const run = await runWithMocks(config, async () => {
    const { main } = await import("../../program");
    try {
      return await main();
    } catch (err) {
      error = err as Error;
      return {};
    }
  });
  return { error, registered: run.resources.map((r) => r.name) };
}

describe("server stack on bad input", () => {
  it("fails on a port where nothing listens, naming the key, before registering anything", async () => {
    const s = await listen("");
    const port = String(s.port);
    await s.close();
    const { error, registered } = await attempt({ host: "127.0.0.1", port, adminEmail: "a@example.com" });
    expect(error?.message).toMatch(/gitea-homelab:port: nothing listens on 127\.0\.0\.1/);
    expect(registered).toEqual([]);
  });

  it("reports every config problem at once", async () => {
    const { error } = await attempt({ host: "127.0.0.1", httpPort: "0", adminEmail: "" });
    expect(error?.message).toMatch(/2 problems/);
    expect(error?.message).toMatch(/gitea-homelab:httpPort/);
    expect(error?.message).toMatch(/gitea-homelab:adminEmail: is required/);
  });
});
