/** The checks every generated bash script must pass: strict mode, `bash -n`, shellcheck. */
import { spawnSync } from "child_process";
import { expect } from "vitest";
import { MANAGED_HEADER } from "../../components/render/shell";

/**
 * Fails with a message naming the package when a tool the tests need is missing (instead of an
 * ENOENT deep inside a test). Returns the tool's path.
 */
export function requireTool(tool: string, debianPackage: string): string {
  const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
  if (found === "") throw new Error(`the unit tests need ${tool}: install it (apt-get install ${debianPackage}), then run npm test again`);
  return found;
}

export function expectCleanScript(script: string): void {
  expect(script.startsWith(`#!/usr/bin/env bash\n# ${MANAGED_HEADER}\n`)).toBe(true);
  expect(script).toContain("\nset -euo pipefail\n");
  const syntax = spawnSync("bash", ["-n"], { input: script });
  expect(syntax.stderr.toString()).toBe("");
  expect(syntax.status).toBe(0);
  const lint = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: script });
  expect(lint.error, "shellcheck must be installed (apt-get install shellcheck)").toBeUndefined();
  expect(lint.stdout.toString()).toBe("");
  expect(lint.status).toBe(0);
}
