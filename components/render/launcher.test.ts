/**
 * The POSIX launcher every command goes through. Alpine's /bin/sh is busybox ash and a bare
 * Alpine host has no bash: the launcher runs under busybox ash here.
 */
import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { asRootCommand } from "./shell";
import { BUSYBOX, busyboxPath } from "../../test/helpers/busybox";

describe("the POSIX launcher every command goes through", () => {
  it.runIf(process.getuid?.() === 0)("installs bash with apk when the host has none, then runs the script (as root, under busybox ash)", () => {
    const real = spawnSync("sh", ["-c", "command -v bash"], { encoding: "utf8" }).stdout.trim();
    const log = join(mkdtempSync(join(tmpdir(), "gh-apk-")), "apk.log");
    const path = busyboxPath({ apk: `echo "apk $*" >>${log}\nln -s ${real} "$(dirname "$0")/bash"` });
    const invocation = asRootCommand('echo "ran with bash $BASH_VERSION"');
    const run = spawnSync(BUSYBOX, ["ash", "-c", invocation.command], { env: { PATH: path }, input: invocation.stdin, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(/^ran with bash \d+\.\d+/);
    expect(readFileSync(log, "utf8")).toBe("apk add --update-cache --quiet --no-progress bash\n");
  });

  it.runIf(process.getuid?.() === 0)("fails clearly on a host with neither bash nor apk", () => {
    const invocation = asRootCommand("echo unreachable");
    const run = spawnSync(BUSYBOX, ["ash", "-c", invocation.command], { env: { PATH: busyboxPath() }, input: invocation.stdin, encoding: "utf8" });
    expect(run.status).toBe(65);
    expect(run.stderr).toMatch(/this host has no bash/);
  });
});
