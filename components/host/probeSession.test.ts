import { spawnSync } from "child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { renderPortProbe } from "../firewall/drift";
import { parseProbeSession, renderLocalProbeCommand, renderProbeSessionScript } from "./probeSession";
import { renderPodmanExistsProbe } from "../render/podman";
import { MANAGED_HEADER, sh } from "../render/shell";
import { renderRootlessUserProbe } from "../rootlessUser/drift";
import { renderUnitProbe } from "../giteaService/drift";
import { renderRunnerInstallProbe, renderRunnerRegistrationProbe } from "../runner/drift";
import { RUNNER_SETTINGS } from "../../test/helpers/fixtures";
import { expectCleanScript } from "../../test/helpers/scripts";

const TARGET = "operator@192.168.1.10:22";

function session(body: string, exit = 0): string {
  return `${body}\n@@gitea-homelab-session exit ${exit}`;
}

describe("the probe session script", () => {
  const every = renderProbeSessionScript(
    [
      { name: "gitea-http-port", probe: renderPortProbe({ port: 4111, protocol: "tcp" }) },
      { name: "gitea-ssh-port", probe: renderPortProbe({ port: 3333, protocol: "tcp", zone: "FedoraServer" }) },
      { name: "gitea-user-account", probe: renderRootlessUserProbe("rootless") },
      { name: "gitea-data-volume", probe: renderPodmanExistsProbe("volume", "rootless", "gitea-data") },
      { name: "gitea-config-volume", probe: renderPodmanExistsProbe("volume", "rootless", "gitea-config") },
      { name: "gitea-image", probe: renderPodmanExistsProbe("image", "rootless", "docker.gitea.com/gitea:1.27.3-rootless") },
      {
        name: "gitea-service-unit",
        probe: renderUnitProbe({
          user: "rootless",
          name: "gitea",
          style: "quadlet",
          hasEnvironment: true,
          container: { name: "gitea", envKeys: ["GITEA__server__ROOT_URL"], facts: "image=x\nports=4111:3000/tcp" },
        }),
      },
      { name: "runner-install", probe: renderRunnerInstallProbe({ ...RUNNER_SETTINGS, source: { sourcePath: "/opt/act_runner" } }) },
      { name: "runner-register", probe: renderRunnerRegistrationProbe(RUNNER_SETTINGS) },
    ],
    "/var/lib/gitea-homelab/state/server",
  );

  it("with every component's probe is strict, marked as managed, and passes bash -n and shellcheck", () => {
    expectCleanScript(every);
  });

  it("changes nothing on the host: no writes outside its own temp dir", () => {
    expect(every).not.toMatch(/firewall-cmd --|(add|remove)Port|systemctl [^\n]*(start|stop|restart|enable|disable) |install_file|podman [^\n]*(rm|create|load|pull) /);
  });

  it("asks firewalld over D-Bus without starting it, and lists each user's volumes once", () => {
    expect(every).toContain("busctl --auto-start=no");
    expect(every).not.toMatch(/^[^#\n]*firewall-cmd --/m);
    expect(every.match(/cached "volumes-\$user"/g)).toHaveLength(2);
    expect(every).not.toContain("podman volume exists");
    // The firewalld functions are defined once for both ports.
    expect(every.match(/^fw_call\(\)/gm)).toHaveLength(1);
  });

  it("keeps one broken probe from hiding the others, and reads back the recorded markers", () => {
    const records = mkdtempSync(join(tmpdir(), "gh-records-"));
    writeFileSync(join(records, "gitea-http-port"), "3 firewall 4111/tcp: closed, expected open\n");
    const script = renderProbeSessionScript(
      [
        { name: "first", probe: { body: sh`echo a=1
echo 'b=two words'
echo "init=$host_init"` } },
        { name: "broken", probe: { body: sh`echo half=1
return 3` } },
        // A command failing midway counts as a failed probe, even without an explicit return.
        { name: "failing", probe: { body: sh`echo half=1
false
echo after=1` } },
        { name: "gitea-http-port", probe: { vars: { name: "it's" }, body: sh`echo "name=$name"` } },
        { name: "gitea-ssh-port", probe: { body: sh`echo digest="$(file_digest /nonexistent)"` } },
      ],
      records,
    );
    const run = spawnSync("bash", ["-c", script, "gitea-homelab", "systemd"], { encoding: "utf8" });
    expect(run.status).toBe(0);
    const parsed = parseProbeSession(session(run.stdout), TARGET);
    expect(parsed.ok).toBe(true);
    expect(parsed.sections).toEqual({ first: { a: "1", b: "two words", init: "systemd" }, "gitea-http-port": { name: "it's" }, "gitea-ssh-port": { digest: "missing" } });
    expect(parsed.records).toEqual({ "gitea-http-port": "3 firewall 4111/tcp: closed, expected open" });
  });

  it("refuses duplicate names and names that are not file names", () => {
    expect(() => renderProbeSessionScript([{ name: "a", probe: { body: sh`` } }, { name: "a", probe: { body: sh`` } }], "/tmp/r")).toThrow(/duplicate/);
    expect(() => renderProbeSessionScript([{ name: "../etc/passwd", probe: { body: sh`` } }], "/tmp/r")).toThrow(/bad state record name/);
  });
});

describe("parsing a probe session", () => {
  it("reads sections and records", () => {
    const out = session(
      [
        "@@gitea-homelab-probe begin firewall:http",
        "runtime=open",
        "url=http://x/?a=b",
        "@@gitea-homelab-probe end firewall:http",
        "@@gitea-homelab-probe begin @records",
        "gitea-http-port=2 firewall 4111/tcp: closed, expected open",
        "@@gitea-homelab-probe end @records",
      ].join("\n"),
    );
    const parsed = parseProbeSession(out, TARGET);
    expect(parsed).toEqual({
      ok: true,
      sections: { "firewall:http": { runtime: "open", url: "http://x/?a=b" } },
      records: { "gitea-http-port": "2 firewall 4111/tcp: closed, expected open" },
    });
  });

  it("leaves out a section cut short and ignores lines that are not facts", () => {
    const out = session(["@@gitea-homelab-probe begin a", "x=1", "@@gitea-homelab-probe begin b", "garbage line", "=no-key", "y=2", "@@gitea-homelab-probe end b"].join("\n"));
    const parsed = parseProbeSession(out, TARGET);
    expect(parsed.sections).toEqual({ b: { y: "2" } });
  });

  it("treats empty or garbage output as a failed session", () => {
    for (const out of ["", "random text\nmore", "@@gitea-homelab-session exit x"]) {
      const parsed = parseProbeSession(out, TARGET);
      expect(parsed.ok).toBe(false);
      expect(parsed.problem).toMatch(/printed no result/);
    }
  });

  it("names the setting to fix when SSH fails", () => {
    const failed = (stderr: string, exit = 255) => parseProbeSession(`@@gitea-homelab-session exit ${exit}\n@@gitea-homelab-session stderr ${stderr}`, TARGET).problem;
    expect(failed("operator@192.168.1.10: Permission denied (publickey).")).toMatch(/^gitea-homelab:privateKey: /);
    expect(failed("Host key verification failed.")).toMatch(/^gitea-homelab:hostKey: /);
    expect(failed("ssh: connect to host 192.168.1.10 port 22: Connection refused")).toMatch(/^gitea-homelab:host: .*gitea-homelab:port/);
    expect(failed("gitea-homelab: SSH user operator needs passwordless sudo", 64)).toMatch(/^gitea-homelab:user: .*passwordless sudo/);
    expect(parseProbeSession("@@gitea-homelab-session no-ssh-client", TARGET).problem).toMatch(/OpenSSH client \(ssh\)/);
  });

  it("says what to do about the credentials the provider would use, one line each", () => {
    const refused = (credentials: string) =>
      parseProbeSession(`@@gitea-homelab-session credentials ${credentials}\n@@gitea-homelab-session exit 255\n@@gitea-homelab-session stderr ${TARGET}: Permission denied (publickey).`, TARGET).problem;
    const SET = "pulumi config set --secret gitea-homelab:privateKey < ~/.ssh/id_ed25519";
    expect(refused("key=unset agent=none")).toBe(
      `gitea-homelab:privateKey: is unset and no ssh-agent runs (SSH_AUTH_SOCK is unset), so Pulumi has no key to log in to ${TARGET} with (it never reads ~/.ssh); set it: ${SET}, or load the key into an agent: eval "$(ssh-agent)" && ssh-add`,
    );
    expect(refused("key=unset agent=empty")).toBe(`gitea-homelab:privateKey: is unset and the ssh-agent at SSH_AUTH_SOCK holds no key; add yours with ssh-add, or set it: ${SET}`);
    expect(refused("key=unset agent=keys")).toBe(
      `gitea-homelab:privateKey: is unset and ${TARGET} refused every key of the ssh-agent at SSH_AUTH_SOCK (ssh-add -l lists them); ssh-add the key it takes, or set it: ${SET}`,
    );
    expect(refused("key=set agent=none")).toMatch(new RegExp(`^gitea-homelab:privateKey: ${TARGET.replace(/\./g, "\\.")} refused the key in gitea-homelab:privateKey \\(is its public key in ~/\\.ssh/authorized_keys`));
    expect(parseProbeSession("@@gitea-homelab-session credentials key=set agent=dead\n@@gitea-homelab-session exit 255", TARGET).problem).toBe(
      'gitea-homelab:privateKey: SSH_AUTH_SOCK is set but no ssh-agent answers there, and Pulumi\'s command provider then fails every command; start the agent (eval "$(ssh-agent)" && ssh-add) or unset SSH_AUTH_SOCK',
    );
  });
});

describe("the local side of the probe (command:local:run)", () => {
  const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-test-only\n-----END OPENSSH PRIVATE KEY-----";

  /** A stand-in `ssh` on PATH that records its arguments and the files they name, then acts as told. */
  function fakeSsh(behaviour: string, agent?: { exit: number }): { dir: string; env: NodeJS.ProcessEnv } {
    const dir = mkdtempSync(join(tmpdir(), "gh-fake-ssh-"));
    const script = `#!/bin/bash
printf '%s\\n' "$@" >"${dir}/argv"
prev=
for a in "$@"; do
  [[ $prev == -i ]] && { cp "$a" "${dir}/key"; stat -c %a "$a" >"${dir}/key-mode"; }
  [[ $a == UserKnownHostsFile=* && $a != *=/dev/null ]] && cp "\${a#UserKnownHostsFile=}" "${dir}/known_hosts"
  prev=$a
done
${behaviour}
`;
    writeFileSync(join(dir, "ssh"), script);
    chmodSync(join(dir, "ssh"), 0o755);
    // An agent answering ssh-add -l with this exit status (0: keys, 1: none, 2: nobody there).
    writeFileSync(join(dir, "ssh-add"), `#!/bin/sh\nexit ${agent?.exit ?? 2}\n`);
    chmodSync(join(dir, "ssh-add"), 0o755);
    const { SSH_AUTH_SOCK: _ignored, ...env } = process.env;
    return { dir, env: { ...env, PATH: `${dir}:/usr/bin:/bin`, ...(agent ? { SSH_AUTH_SOCK: join(dir, "agent.sock") } : {}) } };
  }

  const command = renderLocalProbeCommand(
    { host: "192.168.1.10", port: 2222, user: "operator", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample" },
    "echo remote command",
  );

  it("is a POSIX sh script that passes shellcheck", () => {
    expect(command.startsWith(`# ${MANAGED_HEADER}\n`)).toBe(true);
    const lint = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "-"], { input: command, encoding: "utf8" });
    expect(lint.stdout).toBe("");
    expect(spawnSync("sh", ["-n"], { input: command }).status).toBe(0);
  });

  it("takes the key from stdin into a 0600 file, pins the host key, and passes the remote command as one argument", () => {
    const ssh = fakeSsh("echo probe-output; exit 0");
    const run = spawnSync("/bin/sh", ["-c", command], { input: KEY, env: ssh.env, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("@@gitea-homelab-session credentials key=set agent=none\nprobe-output\n@@gitea-homelab-session exit 0\n");
    const argv = readFileSync(join(ssh.dir, "argv"), "utf8").split("\n");
    expect(argv.join("\n")).not.toContain("b3BlbnNzaC1rZXktdjEAAAAA");
    // ssh_config and the agent out of it, as the provider never uses them without SSH_AUTH_SOCK.
    expect(argv).toEqual(expect.arrayContaining(["-F", "/dev/null", "-p", "2222", "BatchMode=yes", "IdentityAgent=none", "StrictHostKeyChecking=yes", "operator@192.168.1.10", "echo remote command"]));
    expect(readFileSync(join(ssh.dir, "key"), "utf8")).toBe(`${KEY}\n`);
    expect(readFileSync(join(ssh.dir, "key-mode"), "utf8").trim()).toBe("600");
    expect(readFileSync(join(ssh.dir, "known_hosts"), "utf8")).toBe("[192.168.1.10]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n");
  });

  it("uses the SSH agent when there is no key, never a default identity, and skips host key checks only when none is pinned", () => {
    const ssh = fakeSsh("exit 0", { exit: 0 });
    const unpinned = renderLocalProbeCommand({ host: "gitea.lan", port: 22, user: "root" }, "true");
    const run = spawnSync("/bin/sh", ["-c", unpinned], { input: "", env: ssh.env, encoding: "utf8" });
    expect(run.stdout).toContain("credentials key=unset agent=keys\n");
    const argv = readFileSync(join(ssh.dir, "argv"), "utf8").split("\n");
    expect(argv).not.toContain("-i");
    expect(argv).not.toContain("IdentityAgent=none");
    // A file that does not exist: ssh then tries no ~/.ssh/id_* (the provider never reads them).
    const identity = argv.find((a) => a.startsWith("IdentityFile="))!;
    expect(identity).toMatch(/\/no-key$/);
    expect(argv).toEqual(expect.arrayContaining(["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "root@gitea.lan"]));
  });

  it("fails at once, without a session, when SSH_AUTH_SOCK names no agent: the provider would fail every command", () => {
    const ssh = fakeSsh("echo should-not-run; exit 0", { exit: 2 });
    const run = spawnSync("/bin/sh", ["-c", command], { input: KEY, env: ssh.env, encoding: "utf8" });
    expect(run.stdout).not.toContain("should-not-run");
    expect(parseProbeSession(run.stdout, TARGET).problem).toMatch(/^gitea-homelab:privateKey: SSH_AUTH_SOCK is set but no ssh-agent answers there/);
  });

  it("always exits 0 and reports why SSH failed, so the program can name the setting", () => {
    const ssh = fakeSsh("echo 'operator@192.168.1.10: Permission denied (publickey).' >&2; exit 255");
    const run = spawnSync("/bin/sh", ["-c", command], { input: KEY, env: ssh.env, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(parseProbeSession(run.stdout, TARGET).problem).toMatch(/^gitea-homelab:privateKey: /);
  });

  it("says so when there is no ssh client", () => {
    const run = spawnSync("/bin/sh", ["-c", command], { input: KEY, env: { PATH: mkdtempSync(join(tmpdir(), "gh-empty-")) }, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(parseProbeSession(run.stdout, TARGET).problem).toMatch(/OpenSSH client/);
  });
});
