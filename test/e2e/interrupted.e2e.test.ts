/**
 * An `up` interrupted mid-way on the Debian 13 VM, and the way back the README gives ("If `up` was
 * interrupted"): the CLI's whole process group is killed during a fresh up, as a closed laptop or
 * a double Ctrl-C would; the next up is refused (the stack is locked); `pulumi cancel`, `pulumi
 * refresh --clear-pending-creates` and `pulumi up` then converge, with no pending operation left
 * in the state, nothing made twice on the host, and a clean `preview --expect-no-changes`.
 * Stack "server-interrupted" (role server), its own rootless user; removes what it made.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITEA_START_MS, giteaApi } from "./harness/gitea";
import { CliStack, openWorkspace } from "./harness/pulumiCli";
import { acceptedSshSessions, serverConfig, TestVm, testVm, waitForStatus } from "./harness/vm";
import { waitFor } from "./harness/gitea";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const USER = "interrupted";

describe.runIf(rundir)("an interrupted up on the Debian 13 VM", () => {
  let vm: TestVm;
  let stack: CliStack;
  const log: string[] = [];
  let config: Record<string, string>;

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "interrupted suite", sshSessions: () => acceptedSshSessions(vm) });
    stack = await new CliStack(ws, "server-interrupted", log).init();
    config = { ...serverConfig(vm), role: "server", rootlessUser: USER, destroyData: "true", removeUserOnDestroy: "true" };
  });

  afterAll(async () => {
    await stack?.cli(["cancel", "--stack", stack.name, "--yes"]).catch(() => undefined);
    await stack?.destroy().catch(() => undefined);
  });

  it("killed mid-up, it comes back with the README's three commands, nothing made twice", async () => {
    const child = await stack.startUp(config);
    // Mid-way: the account is made and the slow steps (volumes, the image load) are under way.
    await waitFor(`the account ${USER} on the VM`, 300_000, async () => ((await vm.root(`id -u ${USER} >/dev/null 2>&1 && echo yes || echo no`)) === "yes" ? true : undefined), 1000);
    await new Promise((r) => setTimeout(r, 15_000));
    process.kill(-child.pid!, "SIGKILL");
    await new Promise((r) => child.once("exit", r));

    // The killed run left the stack locked: the next up says so and changes nothing.
    const locked = await stack.up(config).then(
      () => "(the up passed)",
      (e: Error) => e.message,
    );
    expect(locked).toMatch(/locked/i);

    const started = Date.now();
    for (const args of [
      ["cancel", "--stack", stack.name, "--yes"],
      ["refresh", "--stack", stack.name, "--clear-pending-creates", "--yes"],
    ]) {
      const r = await stack.cli(args);
      expect(r.code, `pulumi ${args.join(" ")}: ${r.stderr}${r.stdout}`).toBe(0);
    }
    const up = await stack.up(config);
    console.log(`  the way back (cancel, refresh, up): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(up.warnings.filter((w) => /pending operation/i.test(w))).toEqual([]);
    expect(await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);

    // No pending operation left in the state, nothing twice on the host.
    const state = JSON.parse((await stack.cli(["stack", "export", "--stack", stack.name])).stdout);
    expect(state.deployment.pending_operations ?? []).toEqual([]);
    expect(await vm.root(`grep -c '^${USER}:' /etc/subuid`)).toBe("1");
    expect(await vm.root(`grep -c '^${USER}:' /etc/subgid`)).toBe("1");
    expect(await vm.root("firewall-cmd --list-ports | tr ' ' '\\n' | grep -c '^4111/tcp$'")).toBe("1");
    const admin = { username: "gitea-admin", password: stack.lastOutputs().adminPassword as string };
    const users = (await giteaApi(`http://127.0.0.1:${vm.forwarded(4111)}`, "/admin/users", { auth: admin })).body as Array<{ login: string }>;
    expect(users.filter((u) => u.login === "gitea-admin")).toHaveLength(1);
    const strict = await stack.cli(["preview", "--expect-no-changes", "--stack", stack.name]);
    expect(strict.code, strict.stdout + strict.stderr).toBe(0);
    // Later ups do not warn of pending operations either.
    expect((await stack.up(config)).warnings.filter((w) => /pending operation/i.test(w))).toEqual([]);
  });
});
