/**
 * What supervise-daemon hands the command of an OpenRC init script: the script sourced, then
 * the line sh/supervise-daemon.sh runs (an unquoted expansion of command_args, then eval).
 */
import { spawnSync } from "child_process";
import { tmpdir } from "os";
import { expect } from "vitest";

/** The arguments after `--` (the command itself left out), under `shell` (dash by default). */
export function openrcArgs(initScript: string, shell: string[] = ["dash"]): string[] {
  const harness = `
printargs() { for a in "$@"; do printf '%s\\0' "$a"; done; }
${initScript.replace(/^#!.*\n/, "")}
eval printargs $command -- $command_args
`;
  const run = spawnSync(shell[0], [...shell.slice(1), "-c", harness], { encoding: "utf8", cwd: tmpdir() });
  expect(run.stderr, "openrc-run's eval").toBe("");
  return run.stdout.split("\0").slice(2, -1);
}
