/** The test VM booted by test/e2e/vm/start-vm.sh: its vm.env, and root commands on it as the operator. */
import { execFileSync, spawn } from "child_process";
import { readFileSync } from "fs";
import { join } from "path";
import { shq } from "../../../components/render/shell";
import { Connection, sshRun } from "./ssh";

export interface TestVm {
  rundir: string;
  env: Record<string, string>;
  operator: Connection;
  /** Runs a bash command as root on the VM and returns its trimmed stdout. */
  root(cmd: string): Promise<string>;
  /** Runs a command as a rootless user with its runtime dir. */
  asUser(user: string, cmd: string): Promise<string>;
  /** The host port that reaches guest port `port`. */
  forwarded(port: number): number;
  /**
   * Where the guest reaches the host service `name` (GITEA_HOMELAB_VM_HOST_SERVICES, which
   * with-vm.sh sets to "s3 sftp"; "sftp=PORT" names the port): a server out here listens on 127.0.0.1:`port`, and the guest
   * connects to `address`:`port` (10.0.2.100; the VM's network lets nothing else out).
   */
  hostService(name: string): { address: string; port: number };
  reboot(): void;
}

function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  }
  return env;
}

/** vm.env, and the names of what the VM image holds for the tests (build-image.sh's test-images.env). */
export function readVmEnv(rundir: string): Record<string, string> {
  const env = readEnvFile(join(rundir, "vm.env"));
  return { ...readEnvFile(join(env.VM_IMAGE_DIR, "test-images.env")), ...env };
}

export function testVm(rundir: string): TestVm {
  const env = readVmEnv(rundir);
  const operator: Connection = {
    host: "127.0.0.1",
    port: Number(env.VM_SSH_PORT),
    user: env.VM_SSH_USER,
    privateKey: readFileSync(env.VM_SSH_KEY, "utf8"),
    hostKey: env.VM_HOST_KEY,
  };
  const root = async (cmd: string) => (await sshRun(operator, `sudo -n bash -c ${shq(cmd)}`)).stdout.trim();
  return {
    rundir,
    env,
    operator,
    root,
    asUser: (user, cmd) => root(`cd / && runuser -u ${user} -- env XDG_RUNTIME_DIR=/run/user/$(id -u ${user}) ${cmd}`),
    forwarded(port) {
      const p = env[`VM_FWD_${port}`];
      if (!p) throw new Error(`guest port ${port} is not forwarded; start the VM with it`);
      return Number(p);
    },
    hostService(name) {
      const p = env[`VM_HOST_PORT_${name.toUpperCase()}`];
      if (!p || !env.VM_HOST_ADDR) throw new Error(`host service ${name} is not forwarded; start the VM with GITEA_HOMELAB_VM_HOST_SERVICES naming it`);
      return { address: env.VM_HOST_ADDR, port: Number(p) };
    },
    reboot: () => execFileSync("bash", [join(__dirname, "../vm/reboot-vm.sh"), rundir], { stdio: "inherit" }),
  };
}

/** Runs one of test/e2e/vm/*.sh, its output on this process's stderr; rejects when it fails. */
function vmScript(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [join(__dirname, "../vm", script), ...args], { env, stdio: ["ignore", "ignore", "inherit"] });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${script} ${args.join(" ")} failed (${code})`))));
  });
}

/**
 * Boots another fresh VM from inside a suite, in `rundir` (start-vm.sh, as with-vm.sh boots the
 * run's own), with `guestPorts` forwarded. `hostServices` is GITEA_HOMELAB_VM_HOST_SERVICES for
 * it: "sftp=PORT" makes it reach the server already listening out here on PORT, as another VM
 * does. `imageDir`: the image the run's VM booted (VM_IMAGE_DIR), not looked up again.
 * Stop it with stopVm, always.
 */
export async function startVm(rundir: string, guestPorts: number[], opts: { hostServices?: string; imageDir?: string } = {}): Promise<TestVm> {
  const env: NodeJS.ProcessEnv = { ...process.env, GITEA_HOMELAB_VM_HOST_SERVICES: opts.hostServices ?? "" };
  if (opts.imageDir) env.GITEA_HOMELAB_VM_IMAGE_DIR = opts.imageDir;
  await vmScript("start-vm.sh", [rundir, ...guestPorts.map(String)], env);
  return testVm(rundir);
}

/** Shuts the VM of `rundir` down (stop-vm.sh: a clean poweroff, then qemu killed after a bound). */
export function stopVm(rundir: string): Promise<void> {
  return vmScript("stop-vm.sh", [rundir], process.env);
}

/** Polls `url` until it answers `status`, up to `timeoutMs`; returns the last status seen (0: no answer). */
export async function waitForStatus(url: string, status: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = await fetch(url, { signal: AbortSignal.timeout(5000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (seen === status) return seen;
    await new Promise((r) => setTimeout(r, 3000));
  }
  return seen;
}

/** Stack config that connects to the VM as its sudo operator, with the pinned host key. */
export function connectionConfig(vm: TestVm): Record<string, string> {
  return {
    host: "127.0.0.1",
    port: vm.env.VM_SSH_PORT,
    user: vm.env.VM_SSH_USER,
    privateKey: vm.operator.privateKey!,
    hostKey: vm.env.VM_HOST_KEY,
  };
}

/** The server stack's config for the VM: real Gitea, built from its Go module, loaded from the archive baked into the VM. */
/**
 * The server stack's config for the VM. Plain HTTP unless `tls` says otherwise: the lifecycle
 * suite proves the default (own-ca); the other suites' checks speak http to the forwarded port.
 */
export function serverConfig(vm: TestVm, opts: { tls?: string } = {}): Record<string, string> {
  return {
    ...connectionConfig(vm),
    tls: opts.tls ?? "off",
    publicHost: "gitea.test",
    adminEmail: "admin@gitea.test",
    image: vm.env.GITEA_IMAGE,
    imageArchive: vm.env.GITEA_IMAGE_ARCHIVE,
  };
}

/** The runner label the test workflows use: the job image baked into the VM (nothing can be pulled). */
export function jobLabel(vm: TestVm): string {
  return `debian-local:docker://${vm.env.JOB_IMAGE}`;
}

/**
 * The wsl stack's config for the VM: the real runner binary baked into the VM, as on a host
 * without internet. Gitea's URL comes from `overrides`: `serverStack` (a StackReference), or
 * `instanceUrl` with `registrationToken`.
 */
export function wslConfig(vm: TestVm, overrides: Record<string, string>): Record<string, string> {
  return {
    ...connectionConfig(vm),
    runnerSourcePath: vm.env.RUNNER_BINARY,
    runnerLabels: jobLabel(vm),
    ...overrides,
  };
}

/**
 * Makes `gitea.test` (the stacks' publicHost) resolve to 127.0.0.1 on the VM, for a runner on
 * the same VM: rootless Podman's pasta does not forward a connection the host makes to its own
 * LAN address (see wsl.e2e.test.ts).
 */
export async function resolveGiteaTestLocally(vm: TestVm): Promise<void> {
  await vm.root("grep -q ' gitea.test$' /etc/hosts || echo '127.0.0.1 gitea.test' >>/etc/hosts");
}

/** SSH sessions sshd accepted so far (the call that asks counts itself). */
export async function acceptedSshSessions(vm: TestVm): Promise<number> {
  return Number(await vm.root("journalctl --no-pager -o cat _COMM=sshd-session _COMM=sshd | grep -c '^Accepted ' || true"));
}
