/** Alpine's /bin/sh is busybox ash: POSIX sh is linted for it and run under it here. */
import { spawnSync } from "child_process";
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { expect } from "vitest";
import { requireTool } from "./scripts";

export const BUSYBOX = requireTool("busybox", "busybox-static");

/** Lints POSIX sh as Alpine's /bin/sh runs it: shellcheck for sh, then busybox ash's own parser. */
export function expectCleanPosix(script: string): void {
  const lint = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "-"], { input: script, encoding: "utf8" });
  expect(lint.stdout).toBe("");
  expect(lint.status).toBe(0);
  const syntax = spawnSync(BUSYBOX, ["ash", "-n"], { input: script, encoding: "utf8" });
  expect(syntax.stderr).toBe("");
  expect(syntax.status).toBe(0);
}

/** A PATH of busybox applets only (no bash), plus the given stand-in commands. */
export function busyboxPath(standins: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "gh-busybox-"));
  for (const applet of ["sh", "id", "cat", "cut", "echo", "test", "true", "mkdir", "ln", "rm", "dirname"]) symlinkSync(BUSYBOX, join(dir, applet));
  for (const [name, body] of Object.entries(standins)) {
    writeFileSync(join(dir, name), `#!${BUSYBOX} ash\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}
