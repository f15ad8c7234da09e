/**
 * The error every bad setting raises, in stacks and components alike: it lists each problem
 * with the config key to fix. Components raise it for facts a host reports (an unsupported OS,
 * an SSH key refused) before anything on the host changes.
 */

export const PROJECT = "gitea-homelab";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}
