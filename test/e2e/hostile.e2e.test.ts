/**
 * Hostile config values on the real Debian 13 VM: values that pass validation but are full of
 * shell and systemd syntax ($(…), ;, quotes, $VAR, %specifiers) go through a fresh up with a
 * Quadlet unit, then a classic unit, served over HTTPS from the server's own CA (tls own-ca, the
 * default for an https rootUrl to Gitea itself, as most hosts run it). No canary file may appear
 * anywhere on the host, and the real Gitea must receive each value exactly (its own app.ini, its
 * own admin account). It runs as a rootless user of its own, so data other suites kept on the VM
 * (an admin made with another e-mail) cannot meet it, and removes everything it made, data and
 * account included. Driven by the real Pulumi CLI (test/e2e/harness/pulumiCli.ts), stack
 * "server-hostile" (the run's other suite files share the file backend; the config sets `role:
 * server`): the values go through `pulumi config set` (the password with --secret, on stdin; a
 * Gitea setting with --path) as a user's would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITEA_START_MS, giteaApi, iniValue, trustGiteaCa } from "./harness/gitea";
import { CliStack, openWorkspace } from "./harness/pulumiCli";
import { acceptedSshSessions, serverConfig, TestVm, testVm, waitForStatus } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

/** Each payload would make /tmp/gh-canary-N if any shell or systemd ever ran it as code. */
const ROOT_URL = "https://gitea.test:4111/$(touch$IFS/tmp/gh-canary-1)/;touch$IFS/tmp/gh-canary-2;/%2541h/$USER/${HOME}/'q'/a&b|c/";
const ADMIN_EMAIL = "ops`touch$IFS/tmp/gh-canary-3`$USER'x&y|z@gitea.test";
const ADMIN_PASSWORD = "p4ss'$(touch$IFS/tmp/gh-canary-4)\"`x`";
/** A Gitea setting (config `gitea`, set with --path); # ; and the backtick make Gitea quote it in app.ini. */
const GITEA_SETTING = "a forge; $(touch$IFS/tmp/gh-canary-5) `touch$IFS/tmp/gh-canary-6` %h %% $USER ${HOME} 'q' \"q\" # ;";
/** Not the other suites' "rootless": its volumes start empty whatever ran before. */
const USER = "hostile";

describe.runIf(rundir)("hostile config values on the Debian 13 VM", () => {
  let vm: TestVm;
  let stack: CliStack;
  const log: string[] = [];
  let config: Record<string, string>;

  const canaries = () => vm.root("find / -xdev -name 'gh-canary-*' 2>/dev/null | tr '\\n' ' '; ls /tmp | grep -c gh-canary || true");
  const appIni = () => vm.asUser(USER, "podman exec gitea cat /etc/gitea/app.ini");
  const rootUrlInGitea = async () => iniValue(await appIni(), "server", "ROOT_URL");
  // https, verified against the stack's CA for gitea.test (trustGiteaCa, after the fresh up).
  const web = () => `https://127.0.0.1:${vm.forwarded(4111)}`;

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "hostile suite", sshSessions: () => acceptedSshSessions(vm) });
    stack = await new CliStack(ws, "server-hostile", log).init();
    config = { ...serverConfig(vm, { tls: "own-ca" }), role: "server", rootlessUser: USER, rootUrl: ROOT_URL, adminEmail: ADMIN_EMAIL, adminPassword: ADMIN_PASSWORD, "gitea.ui.meta.DESCRIPTION": GITEA_SETTING, destroyData: "true", removeUserOnDestroy: "true" };
  });

  afterAll(async () => {
    await stack?.destroy().catch(() => undefined);
  });

  it("a Quadlet unit: nothing runs, Gitea gets every value exactly", async () => {
    const report = await stack.up(config);
    // tls off's 13, with the certificate's volume and command.
    expect(report.commands.map((c) => c.operation)).toEqual(Array(15).fill("create"));
    expect(stack.lastOutputs().tls).toBe("own-ca");
    trustGiteaCa(stack.lastOutputs().caCertificate as string, "gitea.test");
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await canaries()).toBe("0");
    // WHATWG URL normalisation keeps these characters; only the braces are percent-encoded.
    const rootUrl = new URL(ROOT_URL).href;
    expect(rootUrl).toContain("$(touch$IFS/tmp/gh-canary-1)");
    expect(await rootUrlInGitea()).toBe(rootUrl);
    expect(iniValue(await appIni(), "ui.meta", "DESCRIPTION")).toBe(GITEA_SETTING);
    // The admin exists with the hostile e-mail and logs in with the hostile password.
    const me = await giteaApi(web(), "/user", { auth: { username: "gitea-admin", password: ADMIN_PASSWORD } });
    // Gitea 1.26 stores e-mail addresses in lower case (seen on the VM: $IFS came back as $ifs).
    expect([me.status, me.body.email]).toEqual([200, ADMIN_EMAIL.toLowerCase()]);
  });

  it("a classic unit (ExecStart= expands $ and %): nothing runs, the same values arrive", async () => {
    const report = await stack.up({ ...config, unitStyle: "service" });
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`)).toContain("replace gitea-service-unit");
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await vm.root(`systemctl --user -M ${USER}@ is-active gitea.service`)).toBe("active");
    expect(await canaries()).toBe("0");
    expect(await rootUrlInGitea()).toBe(new URL(ROOT_URL).href);
    expect(iniValue(await appIni(), "ui.meta", "DESCRIPTION")).toBe(GITEA_SETTING);
    // A value systemd would have expanded shows as text in the unit, doubled.
    expect(await vm.root(`grep -c 'ROOT_URL=.*\\$\\$(touch\\$\\$IFS' ~${USER}/.config/systemd/user/gitea.service`)).toBe("1");
  });

  it("the next preview sees no drift, and destroy leaves no canary", async () => {
    expect((await stack.preview({ ...config, unitStyle: "service" })).steps).toEqual([]);
    await stack.destroy();
    expect(await canaries()).toBe("0");
    expect(await vm.root(`id -u ${USER} >/dev/null 2>&1 && echo yes || echo no`)).toBe("no");
  });
});
