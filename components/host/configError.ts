/**
 * The error every bad setting raises, in stacks and components alike: it lists each problem
 * with the config key to fix. Components raise it for facts a host reports (an unsupported OS,
 * an SSH key refused) before anything on the host changes.
 */
import { RunError } from "@pulumi/pulumi";

export const PROJECT = "gitea-homelab";

/**
 * A RunError, so Pulumi prints its message alone (no stack, no "unhandled exception"). Its
 * message cannot be changed: the SDK prefixes `error serializing property "…"` to an error
 * thrown inside an `apply` once per nesting level, which would bury the problems.
 */
export class ConfigError extends RunError {
  /** `heading`: what went wrong, when it is not the config itself (a host that dropped the connection). */
  constructor(
    readonly problems: string[],
    heading = "invalid stack config",
  ) {
    const text = `${heading} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` + problems.map((p) => `  - ${p}`).join("\n");
    super(text);
    this.name = "ConfigError";
    Object.defineProperty(this, "message", { get: () => text, set: () => undefined, enumerable: false, configurable: false });
    // Its stack is its message: a stack is no help to a user, and formatting one runs the
    // language host's source maps over the SDK, which held the error back 15 s (seen with the
    // real CLI: a refused key's preview took 20 s, 2.4 s with this).
    Object.defineProperty(this, "stack", { value: `ConfigError: ${text}`, writable: true, enumerable: false, configurable: true });
  }
}
