import { execFileSync, spawnSync } from "child_process";
import { describe, expect, it } from "vitest";
import { expectCleanScript } from "../../test/helpers/scripts";
import { asRootCommand, heredoc, renderScript, sh, shellVars, shq } from "./shell";

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
    const res = spawnSync("bash", ["-c", asRootCommand(script)], { input: "s3cret\n" });
    expect(res.stderr.toString()).toBe("");
    // CI and developers run as root here, so the script runs directly; sudo is exercised on the VM.
    expect(res.stdout.toString()).toBe(`hello world ${process.getuid!()} s3cret\n`);
  });
});
