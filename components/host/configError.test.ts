/**
 * What a user sees of a ConfigError: Pulumi prints a RunError's message alone, so the text is
 * exactly the list of problems, also when the error was thrown inside an `apply` and went through
 * the SDK's serialization of nested resource inputs (which renames any other error).
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./configError";

/** An input that fails as an apply that throws does (handled here, so the runner sees no stray rejection). */
function rejected(err: Error): Promise<string> {
  const p = Promise.reject(err);
  p.catch(() => undefined);
  return p;
}

const TEXT = "invalid stack config (1 problem):\n  - gitea-homelab:hostKey: the host's key differs from the pinned one";

describe("ConfigError", () => {
  it("is a RunError: Pulumi prints its message, without a stack or 'unhandled exception'", () => {
    const err = new ConfigError(["gitea-homelab:hostKey: the host's key differs from the pinned one"]);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect(err.message).toBe(TEXT);
    expect(new ConfigError(["a", "b"]).message).toBe("invalid stack config (2 problems):\n  - a\n  - b");
  });

  it("has its message as its stack, so nothing formats a stack trace through source maps (15 s in the language host)", () => {
    const original = Error.prepareStackTrace;
    let formatted = 0;
    Error.prepareStackTrace = (e, frames) => {
      formatted++;
      return original ? original(e, frames) : String(e);
    };
    try {
      const err = new ConfigError(["gitea-homelab:hostKey: the host's key differs from the pinned one"]);
      expect(err.stack).toBe(`ConfigError: ${TEXT}`);
      expect(formatted).toBe(0);
    } finally {
      Error.prepareStackTrace = original;
    }
  });

  it("keeps its text when thrown inside an apply and serialized as a nested resource input", async () => {
    const err = new ConfigError(["gitea-homelab:hostKey: the host's key differs from the pinned one"]);
    let caught: unknown;
    try {
      await pulumi.runtime.serializeProperties("resource", { connection: { nested: { deeper: rejected(err) } }, create: rejected(err) });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(err);
    expect(pulumi.RunError.isInstance(caught)).toBe(true);
    expect((caught as Error).message).toBe(TEXT);
    // An ordinary error gets the SDK's prefix: the reason ConfigError refuses it.
    const plain = new Error("boom");
    await pulumi.runtime.serializeProperties("resource", { create: rejected(plain) }).catch(() => undefined);
    expect(plain.message).toBe('error serializing property "create": boom');
  });
});
