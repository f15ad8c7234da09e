/**
 * Drift on the Debian 13 VM: for each kind of hand-made change the server stack covers, make
 * it on the host, then `preview` must list exactly the drifted commands with the drift said,
 * `up` must repair only those, and the next `preview` must be clean. Driven by the real Pulumi
 * CLI (test/e2e/harness/pulumiCli.ts), stack "server-drift" (the run's other suite files share
 * the file backend; the config sets `role: server`). The probe runs as users run it: the
 * `command:local:run` invoke opens one SSH session with the system's ssh client, so a preview
 * opens exactly one session (as the VM's sshd counts them) and `up`, which runs the program
 * twice, two.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITEA_START_MS } from "./harness/gitea";
import { CliStack, DeploymentError, openWorkspace, PreviewReport, RunReport } from "./harness/pulumiCli";
import { acceptedSshSessions, serverConfig, TestVm, testVm, waitForStatus } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const QUADLET = "~rootless/.config/containers/systemd/gitea.container";

describe.runIf(rundir)("drift on the server host", () => {
  let vm: TestVm;
  let stack: CliStack;
  let config: Record<string, string>;
  const log: string[] = [];

  const userctl = (args: string) => vm.root(`systemctl --user -M rootless@ ${args}`);
  const healthy = async () => expect(await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
  const planned = (p: PreviewReport) => p.steps.map((s) => `${s.operation} ${s.resource}`).sort();
  const ran = (r: RunReport) => r.commands.map((c) => `${c.operation} ${c.resource}`).sort();

  /**
   * The cycle every kind of drift goes through. `drift` maps each command expected to show as
   * an update to what its drift description must say.
   */
  async function driftCycle(drift: Record<string, RegExp>): Promise<PreviewReport> {
    const preview = await stack.preview(config);
    expect(planned(preview)).toEqual(Object.keys(drift).map((name) => `update ${name}`).sort());
    for (const [name, text] of Object.entries(drift)) {
      const step = preview.steps.find((s) => s.resource === name)!;
      expect(step.changed).toEqual(["create"]);
      expect(step.drift, name).toMatch(text);
      expect(preview.warnings.some((w) => w.includes(`${name}: drift on the host: `)), name).toBe(true);
    }
    // The preview ran no command: the probe's one session is the only one sshd accepted. (A
    // preview's `commands` are the ones `up` would run, its `steps`.)
    expect(preview.sshSessions).toBe(1);

    const repair = await stack.up(config);
    expect(ran(repair)).toEqual(Object.keys(drift).map((name) => `update ${name}`).sort());
    // An update has a previous output: the provider would warn had the program asked for it in the SSH environment.
    expect(repair.warnings.filter((w) => /PULUMI_COMMAND_STDOUT|AcceptEnv/.test(w))).toEqual([]);

    const after = await stack.preview(config);
    expect(after.steps).toEqual([]);
    expect(after.warnings.filter((w) => w.includes("drift on the host"))).toEqual([]);
    return preview;
  }

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "drift suite", sshSessions: () => acceptedSshSessions(vm) });
    stack = await new CliStack(ws, "server-drift", log).init();
    // Data and account go at the end: the next suite's Gitea starts from nothing.
    config = { ...serverConfig(vm), role: "server", destroyData: "true", removeUserOnDestroy: "true" };
    await stack.up(config);
    await healthy();
  });

  afterAll(async () => {
    await stack?.destroy();
  });

  it("a preview of a host in sync opens one SSH session, runs no command and plans nothing", async () => {
    const preview = await stack.preview(config);
    expect(preview.steps).toEqual([]);
    // The probe's one session, as sshd counted it: no other command ran.
    expect(preview.sshSessions).toBe(1);
    expect(preview.commands).toEqual([]);
  });

  it("a firewalld port removed by hand", async () => {
    await vm.root("firewall-cmd --quiet --remove-port=4111/tcp && firewall-cmd --quiet --permanent --remove-port=4111/tcp");
    // The zone is the host's default one, which the probe names.
    await driftCycle({ "gitea-http-port": /^firewall 4111\/tcp: closed in zone public, expected open$/ });
    expect(await vm.root("firewall-cmd --query-port=4111/tcp; firewall-cmd --permanent --query-port=4111/tcp")).toBe("yes\nyes");
  });

  it("the unit stopped", async () => {
    await userctl("stop gitea.service");
    await driftCycle({ "gitea-service-unit": /^unit gitea\.service: inactive, expected active$/ });
    expect(await userctl("is-active gitea.service")).toBe("active");
    await healthy();
  });

  it("the unit file edited", async () => {
    await vm.root(`echo '# edited by hand' >>${QUADLET}`);
    await driftCycle({ "gitea-service-unit": /^unit gitea\.service: unit file edited/ });
    expect(await vm.root(`grep -c 'edited by hand' ${QUADLET} || true`)).toBe("0");
  });

  it("the unit file deleted", async () => {
    await vm.root(`rm ${QUADLET} && systemctl --user -M rootless@ daemon-reload`);
    await driftCycle({ "gitea-service-unit": /^unit gitea\.service: unit file deleted/ });
    expect(await vm.root(`test -f ${QUADLET} && echo present`)).toBe("present");
    expect(await userctl("is-active gitea.service")).toBe("active");
    await healthy();
  });

  it("linger disabled", async () => {
    await vm.root("loginctl disable-linger rootless");
    await vm.root("for i in $(seq 60); do systemctl is-active --quiet user@$(id -u rootless).service || break; sleep 1; done");
    await driftCycle({
      "gitea-user-account": /^user rootless: linger off, expected on/,
      "gitea-service-unit": /^unit gitea\.service: the systemd user manager of rootless is not running/,
    });
    expect(await vm.root("loginctl show-user rootless --property=Linger --value")).toBe("yes");
    await healthy();
  });

  it("the container running another image than the unit's (changed by hand, file put back)", async () => {
    const image = vm.env.GITEA_IMAGE;
    await vm.asUser("rootless", `podman tag ${image} localhost/gitea:hand-made`);
    await vm.root(`cp ${QUADLET} /root/gitea.container.orig && sed -i 's|^Image=.*|Image=localhost/gitea:hand-made|' ${QUADLET}`);
    await userctl("daemon-reload");
    await userctl("restart gitea.service");
    await vm.root(`cp /root/gitea.container.orig ${QUADLET} && chown rootless: ${QUADLET}`);
    await userctl("daemon-reload");
    await driftCycle({ "gitea-service-unit": new RegExp(`^container gitea: image "localhost/gitea:hand-made", expected "${image.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"$`) });
    expect(await vm.asUser("rootless", "podman container inspect gitea --format '{{.ImageName}}'")).toBe(image);
    await healthy();
  });

  it("a volume gone is said loudly, then made again (empty)", async () => {
    await userctl("stop gitea.service");
    await vm.asUser("rootless", "podman volume rm gitea-config");
    const preview = await driftCycle({
      "gitea-config-volume": /^volume gitea-config: MISSING; the data it held may be lost; .*EMPTY/,
      "gitea-service-unit": /^unit gitea\.service: inactive, expected active$/,
    });
    expect(preview.warnings.join("\n")).toMatch(/gitea-config-volume: drift on the host: volume gitea-config: MISSING/);
    expect(await vm.asUser("rootless", "podman volume exists gitea-config && echo present")).toBe("present");
    await healthy();
  });

  it("a host the preview cannot reach, or that shows another host key, is reported naming the setting", async () => {
    const wrongPort = await stack.preview({ ...config, port: String(vm.forwarded(4112)) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(wrongPort).toBeInstanceOf(DeploymentError);
    expect((wrongPort as Error).message).toMatch(/gitea-homelab:(port|host): /);

    const otherKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther00";
    const wrongKey = await stack.preview({ ...config, hostKey: otherKey }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(wrongKey).toBeInstanceOf(DeploymentError);
    expect((wrongKey as Error).message).toMatch(/gitea-homelab:hostKey: operator@127\.0\.0\.1:\d+ did not present the pinned host key/);
    // Nothing ran (sshd accepted no session: the probe refused the host before logging in, and
    // no command was even planned), and the state is as it was: the next preview is still clean.
    expect((wrongKey as DeploymentError).report.commands).toEqual([]);
    expect((wrongKey as DeploymentError).report.sshSessions).toBe(0);
    expect((await stack.preview(config)).steps).toEqual([]);
  });
});
