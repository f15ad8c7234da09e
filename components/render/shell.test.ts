import { execFileSync, spawnSync } from "child_process";
import { mkdtempSync, readdirSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { expectCleanScript } from "../../test/helpers/scripts";
import { asRootCommand, Bash, heredoc, parseRootInvocation, renderScript, sh, shellVars, shq } from "./shell";

describe("shell helpers", () => {
  it("quotes any value into one word", () => {
    for (const v of ["plain", "with space", "it's", "$(reboot)", "a\nb", ""]) {
      expect(execFileSync("bash", ["-c", `printf '%s' ${shq(v)}`]).toString()).toBe(v);
    }
  });

  it("keeps bash expansions and interpolates bash text in sh``", () => {
    const x = shq("a value");
    expect(sh`echo \${HOME} ${x} \`date\``).toBe("echo ${HOME} 'a value' `date`");
  });

  it("refuses, at compile time, a plain string as bash code or as a script's purpose", () => {
    const fromConfig: string = "$(touch /tmp/pwn)";
    // @ts-expect-error a plain string is not bash text: it must go through vars or shq
    expect(sh`echo ${fromConfig}`).toContain("touch");
    // @ts-expect-error a computed purpose could carry a config value into a comment
    expect(() => renderScript({ purpose: `user ${fromConfig}` }, sh`true`)).not.toThrow();
    // At run time too: a purpose is one printable line.
    expect(() => renderScript({ purpose: "two\nlines" }, sh`true`)).toThrow(/one printable line/);
  });

  it("quotes every variable, so a value that names a command is no shellcheck warning (SC2209)", () => {
    expect(shellVars({ labels: "pr", user: "it's" })).toBe("labels='pr'\nuser='it'\\''s'");
    const script = renderScript({ purpose: "test", vars: { labels: "pr", tool: "sudo", empty: "" } }, sh`echo "$labels $tool $empty"`);
    expectCleanScript(script);
    expect(execFileSync("bash", ["-c", script]).toString()).toBe("pr sudo \n");
  });

  it("picks a heredoc delimiter the content cannot end", () => {
    const h = heredoc("GITEA_HOMELAB_EOF\nx");
    const out = execFileSync("bash", ["-c", `cat ${h.open}\n${h.body}\n`]).toString();
    expect(out).toBe("GITEA_HOMELAB_EOF\nx\n");
  });

  it("runs a script as root with stdin left for secrets", () => {
    const script = renderScript({ purpose: "test", vars: { greeting: "hello world" } }, sh`read -r secret; echo "$greeting $(id -u) $secret"`);
    const invocation = asRootCommand(script, { payload: "s3cret\n" });
    const res = spawnSync("sh", ["-c", invocation.command], { input: invocation.stdin });
    expect(res.stderr.toString()).toBe("");
    // CI and developers run as root here, so the script runs directly; sudo is exercised on the VM.
    expect(res.stdout.toString()).toBe(`hello world ${process.getuid!()} s3cret\n`);
  });

  it("keeps the command line the provider quotes on failure one short line, whatever the script", () => {
    const big = renderScript({ purpose: "test" }, sh`echo "${"x".repeat(20000) as Bash}" >/dev/null; echo "gitea-homelab: restoreFrom is not a backup" >&2; exit 1`);
    const invocation = asRootCommand(big, { label: "host_state_before_this_converge=0 in sync" });
    expect(invocation.command).not.toContain("\n");
    expect(invocation.command.length).toBeLessThan(400);
    const res = spawnSync("sh", ["-c", invocation.command], { input: invocation.stdin, encoding: "utf8" });
    expect([res.status, res.stderr]).toEqual([1, "gitea-homelab: restoreFrom is not a backup\n"]);
  });

  it("reads back what it put in stdin", () => {
    const invocation = asRootCommand("echo a\n(echo b)\n", { after: "echo c\n", payload: "p\n)\nexit\n}\n" });
    expect(parseRootInvocation(invocation.stdin)).toEqual({ script: "echo a\n(echo b)\n", after: "echo c\n", onDelete: undefined, payload: "p\n)\nexit\n}\n" });
    expect(parseRootInvocation(asRootCommand("true").stdin)).toEqual({ script: "true\n", after: undefined, onDelete: undefined, payload: "" });
    expect(parseRootInvocation("echo not ours")).toBeUndefined();
    expect(parseRootInvocation(asRootCommand("true", { onDelete: "echo gone\n", payload: "p\n" }).stdin)).toEqual({ script: "true\n", after: undefined, onDelete: "echo gone\n", payload: "p\n" });
  });

  it("runs the delete script from the same stdin, with the payload the create had, and not the create", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-delete-"));
    const invocation = asRootCommand(`touch ${dir}/created`, { after: `touch ${dir}/recorded`, payload: "admin:s3cret\n", onDelete: 'read -r credentials; echo "deleting with $credentials"' });
    const deleted = spawnSync("sh", ["-c", invocation.deleteCommand!], { input: invocation.stdin, encoding: "utf8" });
    expect([deleted.status, deleted.stdout, deleted.stderr]).toEqual([0, "deleting with admin:s3cret\n", ""]);
    expect(readdirSync(dir)).toEqual([]);
    expect(invocation.deleteCommand).not.toContain("\n");
    expect(asRootCommand("true").deleteCommand).toBeUndefined();
  });

  it("never runs the payload as code, read whole, in part or not at all", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-payload-"));
    const payload = `touch ${dir}/ran-1\n$(touch ${dir}/ran-2)\n}\n)\nexit 0\ntouch ${dir}/ran-3\n`;
    for (const script of ["true", 'read -r first; echo "$first" >/dev/null', "cat >/dev/null", "exit 0", "(exit 0)"]) {
      const invocation = asRootCommand(script, { payload, after: "true" });
      const res = spawnSync("sh", ["-c", invocation.command], { input: invocation.stdin, encoding: "utf8" });
      expect([script, res.status, res.stderr]).toEqual([script, 0, ""]);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("runs what scripts hold inside its braces: case patterns, heredocs, parentheses, an early exit", () => {
    const script = renderScript(
      { purpose: "test" },
      sh`
case "a)" in
  "a)") echo "case ok" ;;
  *) echo no ;;
esac
cat <<'END'
) } exit 9
END
(echo "subshell ok")
exit 0
echo unreachable`,
    );
    const invocation = asRootCommand(script, { after: "echo recorded" });
    const res = spawnSync("sh", ["-c", invocation.command], { input: invocation.stdin, encoding: "utf8" });
    expect([res.status, res.stdout, res.stderr]).toEqual([0, "case ok\n) } exit 9\nsubshell ok\nrecorded\n", ""]);
  });
});
