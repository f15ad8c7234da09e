/**
 * Alpine (OpenRC) hosts. Alpine packages and images cannot be fetched here, so nothing runs on
 * a real Alpine host: the rendered files are checked, shellchecked for the shell that runs
 * them, and the POSIX sh parts are run under busybox ash, Alpine's /bin/sh.
 */
import { spawnSync } from "child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { renderGiteaOpenrc, renderGiteaUnit, renderUnitConf, renderUnitInstallScript, renderUnitRemoveScript } from "./render";
import { unitDrift } from "./drift";
import { fileDigest, MANAGED_HEADER } from "../render/shell";
import { CONTAINER_SPEC } from "../../test/helpers/fixtures";
import { openrcArgs } from "../../test/helpers/openrc";
import { expectCleanScript } from "../../test/helpers/scripts";
import { BUSYBOX, expectCleanPosix } from "../../test/helpers/busybox";

const SPEC = { ...CONTAINER_SPEC, environment: { ...CONTAINER_SPEC.environment, GITEA__server__ROOT_URL: "https://git.example.com/" } };

describe("the OpenRC service", () => {
  const initScript = renderGiteaOpenrc({ ...SPEC, userns: "keep-id:uid=1000,gid=1000" });

  it("runs podman in the foreground under supervise-daemon as the user, restarted after a crash", () => {
    const lines = initScript.split("\n");
    expect(lines[0]).toBe("#!/sbin/openrc-run");
    expect(lines[1]).toBe(`# ${MANAGED_HEADER}`);
    expect(lines).toContain("supervisor=supervise-daemon");
    expect(lines).toContain("command=/usr/bin/podman");
    expect(lines).toContain('command_user="$run_as_user"');
    expect(lines).toContain("respawn_max=0");
    expect(lines).toContain("  need net cgroups");
    const args = openrcArgs(initScript);
    expect(args.slice(0, 4)).toEqual(["run", "--rm", "--replace", "--name=gitea"]);
    expect(args).not.toContain("--detach");
    expect(args).toEqual(expect.arrayContaining(["--publish=4111:3000", "--publish=3333:2222", "--volume=gitea-data:/var/lib/gitea:Z", "--env-file=.config/gitea-homelab/gitea.env"]));
    expect(args).toContain("--userns=keep-id:uid=1000,gid=1000");
    expect(args).toContain("--env=GITEA__server__ROOT_URL=https://git.example.com/");
    expect(args[args.length - 1]).toBe("docker.gitea.com/gitea:1.27.3-rootless");
    expect(initScript).not.toMatch(/SECRET_KEY|INTERNAL_TOKEN|JWT_SECRET/);
    // Stopping leaves no container holding the ports, even if Podman's client died first.
    expect(lines).toContain('retry="SIGTERM/30/SIGKILL/5"');
    expect(initScript).toMatch(/stop_post\(\) \{[\s\S]*podman rm --force --ignore --time 10 gitea/);
  });

  it("passes any value to podman unchanged through openrc-run's eval (busybox ash and dash, supervise_start's expansion)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-openrc-eval-"));
    try {
      const canary = join(dir, "CANARY");
      const hostile = [
        "two  words\tand a tab",
        "p * q ? [a]",
        `$(touch ${canary})`,
        `\`touch ${canary}\``,
        `;touch ${canary};`,
        `it's "quoted" \\ back`,
        "${HOME} $HOME %h 100%",
        "ünïcödé ✓",
      ];
      const environment = Object.fromEntries(hostile.map((v, i) => [`GITEA__test__V${i}`, v]));
      const script = renderGiteaOpenrc({ ...SPEC, environment });
      expectCleanPosix(script);
      for (const shell of [[BUSYBOX, "ash"], ["dash"]]) {
        const args = openrcArgs(script, shell);
        for (const [k, v] of Object.entries(environment)) expect(args).toContain(`--env=${k}=${v}`);
        expect(args).toContain(SPEC.image);
        expect(existsSync(canary)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("init script and conf.d pass shellcheck for sh and busybox ash's parser", () => {
    expectCleanPosix(initScript);
    expectCleanPosix(renderUnitConf("rootless", "gitea"));
  });

  it("start_pre makes the user's runtime dir and log and passes the environment on (run under busybox ash with openrc's helpers stubbed)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-openrc-"));
    writeFileSync(join(dir, "conf"), renderUnitConf("root", "gitea").replace("/var/log/gitea-homelab/gitea.log", `${dir}/log/gitea.log`));
    writeFileSync(join(dir, "init"), initScript);
    const harness = `
checkpath() { echo "checkpath $*"; }
. ${dir}/conf
. ${dir}/init
start_pre
echo "user=$command_user dir=$directory env=$supervise_daemon_args"
echo "respawn=$respawn_delay/$respawn_max log=$output_log"
`;
    const run = spawnSync(BUSYBOX, ["ash", "-c", harness], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.stdout.split("\n")).toEqual([
      "checkpath --directory --mode 0700 --owner root /run/user/0",
      `checkpath --directory --mode 0755 ${dir}/log`,
      `checkpath --file --mode 0640 --owner root ${dir}/log/gitea.log`,
      "user=root dir=/root env=--env XDG_RUNTIME_DIR=/run/user/0 --env HOME=/root",
      `respawn=10/0 log=${dir}/log/gitea.log`,
      "",
    ]);
  });

  const spec = { user: "rootless", name: "gitea", style: "openrc" as const, content: initScript, hasEnvironment: true, container: undefined };

  it("installs it as root with its conf.d, the env file 0600 in the home, in the default runlevel", () => {
    const script = renderUnitInstallScript(spec);
    expectCleanScript(script);
    expect(script).toContain("unit_file='/etc/init.d/gitea'");
    expect(script).toContain("conf_file='/etc/conf.d/gitea'");
    expect(script).toContain('install_file "$tmp" "$unit_file" 755 root root');
    expect(script).toContain('install_file "$tmp" "$home/$env_file" 600 "$user" "$group"');
    expect(script).toContain('rc-update add "$service" default');
    expect(script).toContain('converge_service "$service" openrc_ctl');
    expect(script).not.toMatch(/^\s*(systemctl|loginctl|userctl)\b/m);
  });

  it("removes it: stopped, out of the runlevel, files gone", () => {
    const script = renderUnitRemoveScript(spec);
    expectCleanScript(script);
    expect(script).toContain('rc-service "$service" stop');
    expect(script).toContain('rc-update del "$service" default');
  });

  it("compares an OpenRC host's init script, conf.d, state and runlevel", () => {
    const expected = { unitDigest: fileDigest(initScript), confDigest: fileDigest(renderUnitConf("rootless", "gitea")) };
    const inSync = { unit_file: expected.unitDigest, conf_file: expected.confDigest, manager: "active", active: "active", enabled: "enabled" };
    const s = { ...spec, hasEnvironment: false };
    expect(unitDrift(s, expected, inSync)).toEqual([]);
    expect(unitDrift(s, expected, { ...inSync, conf_file: "0".repeat(64) })).toEqual(["unit gitea: conf.d file edited"]);
    expect(unitDrift(s, expected, { ...inSync, active: "inactive" })).toEqual(["unit gitea: inactive, expected active"]);
    expect(unitDrift(s, expected, { ...inSync, enabled: "disabled" })).toEqual(["unit gitea: disabled at boot, expected enabled"]);
  });

  it("is what the container renders on an OpenRC host", () => {
    expect(renderGiteaUnit("openrc", SPEC)).toBe(renderGiteaOpenrc(SPEC));
  });
});
