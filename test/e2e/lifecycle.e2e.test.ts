/**
 * The core lifecycle, once, on one Debian 13 VM, driven by the real Pulumi CLI with the
 * README's commands (what CI runs; the longer cases are in test:e2e:full). The server stack
 * (rootless user "rootless") and the wsl stack, whose runner runs on the same VM and takes
 * Gitea's URL, token and admin from the server stack through a StackReference:
 *   fresh preview and up; an up and a preview that change nothing; drift made by hand, shown
 *   by preview, repaired by up; the runner online and a pushed workflow reading an Actions
 *   secret to success; a scheduled backup; an upgrade to an image that never becomes healthy,
 *   rolled back to the old image and the pre-upgrade data; destroy keeping the data and an up from an empty
 *   state that finds it (the secret still decrypts); the runner gone from Gitea on destroy; a
 *   port change; a restore onto the empty volumes destroy with destroyData leaves. Gitea's
 *   settings: a fresh forge refuses sign-up, shows the configured site name, holds a secret
 *   mailer password in app.ini only, and loses it from app.ini when it leaves the config.
 *   HTTPS, the default: Gitea serves a certificate from the stack's own CA (curl trusts it with
 *   the caCertificate output, not without; plain HTTP serves no login page); the runner
 *   registers over https and its job clones over https; the CA survives a new state and a
 *   restore; a new publicHost shows in preview and up issues a certificate naming it.
 * Gitea and the runner are real (built from their Go modules, baked into the VM); the
 * `command` and `random` plugins are real when the developer has them, else our test doubles
 * (the suite prints which).
 */
import { spawnSync } from "child_process";
import { randomBytes } from "crypto";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shq } from "../../components/render/shell";
import { filesBelow } from "./harness/cliOutput";
import { Forge, VAULT } from "./harness/forge";
import { anonymousPage, GITEA_START_MS, GiteaAuth, giteaApi, iniValue, trustGiteaCa, waitFor } from "./harness/gitea";
import { CliStack, DeploymentError, openWorkspace, RunReport, Workspace } from "./harness/pulumiCli";
import { OffsiteServers, startOffsiteServers } from "./harness/offsiteServers";
import { Timings } from "./harness/timings";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const USER = "rootless";
const BACKUPS = "/var/backups/gitea-e2e";
const RUNNER = "wsl-runner";
const REPO = "vault";
const SITE_NAME = "Lifecycle forge";
/** Set with --secret (--path), as the README shows. */
const MAIL_PASSWORD = "mail-Pa55-$(touch /tmp/mail-canary)-%h";
/** The off-site repository's password (restic encrypts with it). */
const OFFSITE_PASSWORD = "offsite-Pa55-$(touch /tmp/offsite-canary)-%h";
/** Gitea settings as config paths (the harness sets a dotted key with --path). */
const GITEA_SETTINGS = {
  "gitea.APP_NAME": SITE_NAME,
  "gitea.mailer.ENABLED": "true",
  "gitea.mailer.PROTOCOL": "smtp+starttls",
  "gitea.mailer.SMTP_ADDR": "127.0.0.1",
  "gitea.mailer.SMTP_PORT": "587",
  "gitea.mailer.FROM": "gitea@gitea.test",
  "gitea.mailer.USER": "gitea@gitea.test",
  "gitea.mailer.PASSWD": MAIL_PASSWORD,
};
describe.runIf(rundir)("the core lifecycle with the real Pulumi CLI", () => {
  let vm: TestVm;
  let ws: Workspace;
  let server: CliStack;
  let wsl: CliStack;
  let forge: Forge;
  let config: Record<string, string>;
  let history: string[] = [];
  let httpPort = 4111;
  const log: string[] = [];
  const timings = new Timings();

  // https, verified against the stack's CA for gitea.test (trustGiteaCa, after the fresh up).
  const web = () => `https://127.0.0.1:${vm.forwarded(httpPort)}`;
  const caCertificate = () => server.lastOutputs().caCertificate as string;
  /** On the VM, where gitea.test is the VM itself: curl's exit code and HTTP status. */
  const curlOnVm = (args: string) => vm.root(`curl --silent --output /dev/null --max-time 20 --write-out '%{http_code}' ${args}; echo " exit=$?"`);
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
  const cloneUrl = () => `${server.lastOutputs().sshCloneBase as string}gitea-admin/${REPO}.git`;
  const ran = (r: RunReport) => r.commands.map((c) => `${c.operation} ${c.resource}`).sort();
  const openPorts = () => vm.root("echo runtime: $(firewall-cmd --list-ports) permanent: $(firewall-cmd --permanent --list-ports)");
  const keysDigest = () => vm.root(`sha256sum </home/${USER}/.config/gitea-homelab/gitea-keys.env | cut -c1-64`);
  const backups = async () => (await vm.root(`ls -1 ${BACKUPS} | grep '^gitea-backup-' || true`)).split("\n").filter((l) => l !== "");
  const runners = async () => (await giteaApi(web(), "/admin/actions/runners", { auth: admin() })).body.runners as Array<{ id: number; name: string; status: string }>;
  const healthy = async () => expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
  const appIni = () => vm.asUser(USER, "podman exec gitea cat /etc/gitea/app.ini");

  /** The runner's stack: Gitea's URL, token and CA from the server stack; jobs on the VM's network (gitea.test is the VM). */
  const wslStackConfig = () => wslConfig(vm, { serverStack: server.qualifiedName, runnerName: RUNNER, runnerNetwork: "host" });
  const servedCert = `/home/${USER}/.local/share/containers/storage/volumes/gitea-tls/_data/cert.pem`;
  /** Puts a certificate from the stack's CA that ends in 10 days where Gitea's is (as time would). */
  const plantEndingCertificate = () =>
    vm.root(
      [
        `cd /home/${USER}/.config/gitea-homelab/tls`,
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /O=test -keyout /tmp/ending.key -out /tmp/ending.csr 2>/dev/null",
        "printf 'subjectAltName=DNS:gitea.test\\n' >/tmp/ending.ext",
        "openssl x509 -req -in /tmp/ending.csr -CA ca.crt -CAkey ca.key -set_serial 9 -days 10 -extfile /tmp/ending.ext -out /tmp/ending.crt 2>/dev/null",
        `install -m 600 /tmp/ending.key ${servedCert.replace(/cert\.pem$/, "key.pem")}`,
        `install -m 644 /tmp/ending.crt ${servedCert}`,
      ].join(" && "),
    );
  const certificateLasts = async (days: number) => (await vm.root(`openssl x509 -in ${servedCert} -noout -checkend ${days * 86400} >/dev/null && echo yes || echo no`)) === "yes";

  /** Pushes a commit and returns the secret's hash the workflow printed for it (its log in lastRunLog). */
  let lastRunLog = "";
  /** The stand-ins for a cloud bucket (S3, https with a CA of its own) and another machine, outside the VM. */
  let offsite: OffsiteServers;
  const offsiteRecord = async () => Object.fromEntries((await vm.root(`cat ${BACKUPS}/offsite-status`)).split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  /** restic on the VM, as the rootless user, with the stack's repository settings read from the host's own 0600 files. */
  const resticOnVm = (args: string) =>
    vm.root(
      `cd /home/${USER}/.config/gitea-homelab/offsite && set -a && . ./environment && set +a && ` +
        `RESTIC_REPOSITORY=${shq(offsite.s3.repository)} RESTIC_PASSWORD_FILE=$PWD/password RESTIC_CACERT=$PWD/ca.pem runuser -u ${USER} -- restic ${args}`,
    );
  /** The pushed history when the upgrade's backup was made (the newest backup the restore brings back). */
  let historyBeforeUpgrade: string[] = [];
  async function secretHashAfterPush(message: string): Promise<string> {
    const { sha, hash, log } = await forge.vaultHashAfterPush(REPO, message);
    history = [sha, ...history];
    lastRunLog = log;
    return hash;
  }

  beforeAll(async () => {
    vm = testVm(rundir!);
    ws = await openWorkspace(rundir!, { suite: "lifecycle suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server", log).init();
    wsl = await new CliStack(ws, "wsl", log).init();
    forge = new Forge(vm, web, admin);
    await resolveGiteaTestLocally(vm);
    // The runner's jobs run in root's Podman (the socket of a system service): the job image goes there.
    await vm.root(`podman image exists ${vm.env.JOB_IMAGE} || podman load -q -i ${vm.env.JOB_IMAGE_ARCHIVE}`);
    // tls unset: the default (auto: the server's own CA).
    const { tls: _off, ...connection } = serverConfig(vm);
    offsite = await startOffsiteServers(vm, { tls: true });
    config = {
      ...connection,
      backupDir: BACKUPS,
      backupKeep: "3",
      ...GITEA_SETTINGS,
      // Every backup is copied to the stand-in bucket; its CA is the repository's (offsiteCaCertificate).
      offsiteRepository: offsite.s3.repository,
      offsitePassword: OFFSITE_PASSWORD,
      "offsiteEnvironment.AWS_ACCESS_KEY_ID": offsite.s3.accessKeyId,
      "offsiteEnvironment.AWS_SECRET_ACCESS_KEY": offsite.s3.secretAccessKey,
      offsiteCaCertificate: offsite.s3.caCertificate!,
      offsiteKeep: "2 last",
    };
  });

  afterAll(async () => {
    timings.print("lifecycle suite");
    await wsl?.destroy().catch(() => undefined);
    await server?.up({ ...config, destroyData: "true", removeUserOnDestroy: "true" }).catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    await vm?.root(`rm -rf ${BACKUPS}`).catch(() => undefined);
    await offsite?.stopAll();
  });

  it("credentials the provider could not log in with, or a key with a passphrase, fail the preview with one error saying what to do, and run nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-credentials-"));
    const { privateKey: _key, ...keyless } = config;
    const failure = async (name: string, cfg: Record<string, string>, env: Record<string, string | undefined>) => {
      server.envOverrides = env;
      const outcome = await timings.time(`preview refused: ${name}`, () => server.preview(cfg)).then(
        (report) => ({ error: "(the preview passed)", ms: report.wallMs, diagnostics: report.diagnostics }),
        (e: DeploymentError) => ({ error: e.message, ms: e.report.wallMs, diagnostics: e.report.diagnostics }),
      );
      server.envOverrides = {};
      // The preview's own time, without the config commands before it.
      return { error: outcome.error, seconds: outcome.ms / 1000, diagnostics: outcome.diagnostics };
    };
    const agent = spawnSync("ssh-agent", ["-a", join(dir, "agent.sock"), "-s"], { encoding: "utf8" });
    const agentPid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1];
    try {
      spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "stranger")]);
      spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "a passphrase", "-f", join(dir, "locked")]);
      expect(spawnSync("ssh-add", [join(dir, "stranger")], { env: { ...process.env, SSH_AUTH_SOCK: join(dir, "agent.sock") } }).status).toBe(0);
      const cases = {
        "no key, no agent": await failure("no key, no agent", keyless, { SSH_AUTH_SOCK: undefined }),
        "agent socket with no agent": await failure("dead agent", config, { SSH_AUTH_SOCK: join(dir, "gone.sock") }),
        "an agent with a key the host refuses": await failure("agent refused", keyless, { SSH_AUTH_SOCK: join(dir, "agent.sock") }),
        "a key the host refuses": await failure("key refused", { ...config, privateKey: readFileSync(join(dir, "stranger"), "utf8") }, { SSH_AUTH_SOCK: undefined }),
        // Refused before any SSH session, as the program starts: the error Node printed a warning above.
        "a key with a passphrase": await failure("passphrase key", { ...config, privateKey: readFileSync(join(dir, "locked"), "utf8") }, { SSH_AUTH_SOCK: undefined }),
      };
      console.log(Object.entries(cases).map(([what, c]) => `  ${what}: failed after ${c.seconds.toFixed(1)} s`).join("\n"));
      expect(cases["no key, no agent"].error).toContain("gitea-homelab:privateKey: is unset and no ssh-agent runs (SSH_AUTH_SOCK is unset)");
      expect(cases["agent socket with no agent"].error).toContain("gitea-homelab:privateKey: SSH_AUTH_SOCK is set but no ssh-agent answers there");
      expect(cases["an agent with a key the host refuses"].error).toContain("refused every key of the ssh-agent at SSH_AUTH_SOCK");
      expect(cases["a key the host refuses"].error).toContain("refused the key in gitea-homelab:privateKey");
      expect(cases["a key with a passphrase"].error).toContain("gitea-homelab:privateKey: is protected by a passphrase");
      for (const [what, c] of Object.entries(cases)) {
        // One message, as Pulumi prints a RunError: no stack trace, no serialization chain.
        expect(c.error, what).toContain("invalid stack config (1 problem):");
        expect(c.error, what).not.toMatch(/error serializing property|unhandled exception|<ref \*1>|\n\s+at /);
        // Errors only: nothing from Node (PromiseRejectionHandledWarning and its hint) around them.
        expect(c.diagnostics.filter((d) => !d.startsWith("error: ")), what).toEqual([]);
        expect(c.diagnostics.join("\n"), what).not.toMatch(/Warning|--trace-warnings/);
      }
      expect(await vm.root(`id -u ${USER} >/dev/null 2>&1 && echo yes || echo no`)).toBe("no");
    } finally {
      if (agentPid) process.kill(Number(agentPid));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a fresh preview plans the whole server and changes nothing", async () => {
    const preview = await timings.time("fresh preview", () => server.preview(config));
    expect(preview.steps.filter((s) => s.operation === "create").length).toBe(16);
    // A clean run says nothing: no warning (Pulumi.yaml's defaults reach the program as if set), nothing from Node.
    expect(preview.diagnostics).toEqual([]);
    expect(await vm.root(`id -u ${USER} >/dev/null 2>&1 && echo yes || echo no`)).toBe("no");
  });

  it("a fresh up converges the host: Gitea answers, the admin logs in, the firewall is open", async () => {
    const first = await timings.time("fresh up", () => server.up(config));
    expect(ran(first)).toEqual(
      ["server-preflight", "gitea-user-account", "gitea-data-volume", "gitea-config-volume", "gitea-backup-schedule", "gitea-backup-offsite-repository", "gitea-keys-file", "gitea-tls-volume", "gitea-https-certificate", "gitea-image", "gitea-upgrade", "gitea-service-unit", "gitea-health", "gitea-admin", "gitea-http-port", "gitea-ssh-port"]
        .map((n) => `create ${n}`)
        .sort(),
    );
    expect(first.diagnostics).toEqual([]);
    // The progress line shows what a command did, never a file's content (a PEM line).
    expect(Object.entries(first.progress).filter(([, line]) => /^-----|^[A-Za-z0-9+/=]{40,}$/.test(line))).toEqual([]);
    expect(first.progress["gitea-https-certificate"]).toMatch(/^certificate issued for gitea\.test/);
    expect(server.lastOutputs().tls).toBe("own-ca");
    expect(caCertificate()).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    trustGiteaCa(caCertificate(), "gitea.test");
    await healthy();
    expect(await openPorts()).toMatch(/^runtime: (?=.*4111\/tcp)(?=.*3333\/tcp).* permanent: (?=.*4111\/tcp)(?=.*3333\/tcp)/);
    expect(await vm.root(`systemctl --user -M ${USER}@ is-active gitea.service`)).toBe("active");
    const me = await giteaApi(web(), "/user", { auth: admin() });
    expect([me.status, me.body.login, me.body.is_admin]).toEqual([200, "gitea-admin", true]);
    const ini = await vm.asUser(USER, "podman exec gitea cat /etc/gitea/app.ini");
    expect(iniValue(ini, "server", "ROOT_URL")).toBe("https://gitea.test:4111/");
    expect(iniValue(ini, "server", "PROTOCOL")).toBe("https");
    expect(iniValue(ini, "server", "SSH_PORT")).toBe("3333");
    // No secret in Pulumi's state, in what the CLI printed, on the host's command lines or journal.
    const secretKey = iniValue(ini, "security", "SECRET_KEY")!;
    expect(secretKey.length).toBe(64);
    const secrets = [secretKey, admin().password, server.lastOutputs().runnerRegistrationToken as string, MAIL_PASSWORD, OFFSITE_PASSWORD, offsite.s3.secretAccessKey];
    const visible = [filesBelow(ws.backend), log.join("\n"), await vm.root("ps -eo args"), await vm.root("journalctl --no-pager -n 3000")].join("\n");
    for (const s of secrets) expect(visible).not.toContain(s);
  });

  it("https on the URL people use: trusted with the stack's CA, refused without it; plain HTTP serves no login page", async () => {
    await vm.root(`echo ${Buffer.from(caCertificate()).toString("base64")} | base64 -d >/tmp/stack-ca.pem`);
    expect(await curlOnVm("--cacert /tmp/stack-ca.pem https://gitea.test:4111/api/healthz")).toBe("200 exit=0");
    // Without it: curl cannot authenticate the certificate (60).
    expect(await curlOnVm("https://gitea.test:4111/api/healthz")).toBe("000 exit=60");
    // Plain HTTP on the same port: Gitea's TLS server answers 400 and no page.
    const plain = await vm.root("curl --silent --max-time 20 --write-out ' status=%{http_code}' http://gitea.test:4111/user/login || true");
    expect(plain).toMatch(/ status=400$/);
    expect(plain).not.toMatch(/<form|password/i);
    // Inside the container: the certificate and its key, the key Gitea's own (1000) and 0600; never the CA's key.
    expect(await vm.asUser(USER, "podman exec gitea stat -c '%n %a %u' /etc/gitea-homelab/tls/cert.pem /etc/gitea-homelab/tls/key.pem")).toBe(
      "/etc/gitea-homelab/tls/cert.pem 644 1000\n/etc/gitea-homelab/tls/key.pem 600 1000",
    );
    expect(await vm.asUser(USER, "podman exec gitea ls /etc/gitea-homelab/tls")).toBe("cert.pem\nkey.pem");
    // The container's volumes: none of them holds the CA's key (it stays in the rootless user's home).
    expect((await vm.asUser(USER, "podman container inspect gitea --format '{{range .Mounts}}{{.Name}} {{end}}'")).split(" ").filter((n) => n).sort()).toEqual(["gitea-config", "gitea-data", "gitea-tls"]);
    expect(await vm.root(`stat -c '%a %U' /home/${USER}/.config/gitea-homelab/tls/ca.key`)).toBe(`600 ${USER}`);
    expect(await vm.root("systemctl is-active gitea-homelab-tls-rootless.timer; systemctl is-enabled gitea-homelab-tls-rootless.timer")).toBe("active\nenabled");
  });

  it("a fresh forge is closed to strangers and has the owner's settings; a secret one is in app.ini and nowhere else", async () => {
    // Self-registration is closed: the page says so and has no form.
    const signUp = await anonymousPage(web(), "/user/sign_up");
    expect(signUp.status).toBe(200);
    expect(signUp.text).toContain("Registration is disabled");
    expect(signUp.text).not.toContain('name="retype"');
    // Sign-in is needed to view: strangers are sent to the sign-in page, and the API wants a user.
    expect((await anonymousPage(web(), "/explore/repos")).location).toMatch(/\/user\/login/);
    expect((await giteaApi(web(), "/version")).status).toBe(403);
    // The site name from config, in the page title.
    expect((await anonymousPage(web(), "/user/login")).text).toMatch(new RegExp(`<title>[^<]*${SITE_NAME}[^<]*</title>`));
    const ini = await appIni();
    expect(iniValue(ini, "mailer", "PASSWD")).toBe(MAIL_PASSWORD);
    expect(iniValue(ini, "mailer", "SMTP_ADDR")).toBe("127.0.0.1");
    expect(iniValue(ini, "service", "DISABLE_REGISTRATION")).toBe("true");
    // Only the 0600 environment file holds it: not the unit, the state, the CLI's output or the
    // journal (read first: sudo logs the command line of the grep below, password included).
    const visible = [filesBelow(ws.backend), log.join("\n"), await vm.root("ps -eo args"), await vm.root("journalctl --no-pager -n 3000")].join("\n");
    expect(visible).not.toContain("mail-Pa55");
    const files = `/home/${USER}/.config`;
    expect(await vm.root(`stat -c %a ${files}/gitea-homelab/gitea.env`)).toBe("600");
    expect(await vm.root(`grep -rlF -- ${shq(MAIL_PASSWORD)} ${files} || true`)).toBe(`${files}/gitea-homelab/gitea.env`);
    expect(await vm.root("ls /tmp/mail-canary 2>&1 || true")).toMatch(/No such file/);
  });

  it("a second up changes nothing, and preview --expect-no-changes agrees", async () => {
    const second = await timings.time("no-change up", () => server.up(config));
    expect(second.commands).toEqual([]);
    expect(second.diagnostics).toEqual([]);
    expect((await server.preview(config)).diagnostics).toEqual([]);
    // `up` runs the program twice (its preview, then the update): two probe sessions, nothing else.
    expect(second.sshSessions).toBe(2);
    const strict = await timings.time("preview --expect-no-changes", () => server.cli(["preview", "--expect-no-changes", "--stack", server.name]));
    expect(strict.code, strict.stdout + strict.stderr).toBe(0);
  });

  it("a setting removed from config is removed from app.ini: Gitea restarts once, nothing else runs", async () => {
    const { "gitea.mailer.PASSWD": _gone, ...rest } = config;
    config = rest;
    const removed = await timings.time("a setting removed", () => server.up(config));
    expect(ran(removed)).toEqual(["replace gitea-health", "update gitea-service-unit"]);
    await healthy();
    const ini = await appIni();
    expect(iniValue(ini, "mailer", "PASSWD")).toBeUndefined();
    expect(iniValue(ini, "mailer", "SMTP_ADDR")).toBe("127.0.0.1");
    expect((await anonymousPage(web(), "/user/login")).text).toContain(SITE_NAME);
    expect((await server.preview(config)).steps).toEqual([]);
  });

  it("drift made by hand shows in preview as exactly the drifted commands; up repairs it; preview is clean", async () => {
    await vm.root("firewall-cmd -q --remove-port=3333/tcp && firewall-cmd -q --permanent --remove-port=3333/tcp");
    await vm.root(`systemctl --user -M ${USER}@ stop gitea.service`);
    await vm.root(`echo GITEA__service__DISABLE_REGISTRATION=false >>/home/${USER}/.config/gitea-homelab/gitea.env`);
    const preview = await server.preview(config);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`).sort()).toEqual(["update gitea-service-unit", "update gitea-ssh-port"]);
    expect(preview.steps.find((s) => s.resource === "gitea-ssh-port")?.drift).toMatch(/^firewall 3333\/tcp: closed in zone public, expected open$/);
    expect(preview.steps.find((s) => s.resource === "gitea-service-unit")?.drift).toMatch(/^unit gitea\.service: environment file edited; unit gitea\.service: inactive, expected active$/);
    expect(preview.warnings.filter((w) => w.includes(": drift on the host: ")).length).toBe(2);
    const repair = await server.up(config);
    expect(ran(repair)).toEqual(["update gitea-service-unit", "update gitea-ssh-port"]);
    // sshd refuses the provider's PULUMI_COMMAND_* variables, sent on an update or delete
    // (where a previous output exists) unless the program says not to: it never asks for them.
    expect(repair.warnings.filter((w) => /PULUMI_COMMAND_STDOUT|AcceptEnv/.test(w))).toEqual([]);
    await healthy();
    expect(await openPorts()).toMatch(/^runtime: (?=.*3333\/tcp).* permanent: (?=.*3333\/tcp)/);
    expect(await vm.root(`grep -c DISABLE_REGISTRATION /home/${USER}/.config/gitea-homelab/gitea.env || true`)).toBe("0");
    expect((await anonymousPage(web(), "/user/sign_up")).text).toContain("Registration is disabled");
    expect((await server.preview(config)).steps).toEqual([]);
  });

  it("the wsl stack registers the runner from the server stack's outputs, and a pushed workflow reads a secret", async () => {
    const report = await timings.time("wsl fresh up", () => wsl.up(wslStackConfig()));
    expect(ran(report)).toEqual(["create runner-install", "create runner-register", "create wsl-preflight"]);
    // What the installed binary says, not the runnerVersion default.
    expect(wsl.lastOutputs().binaryVersion).toBe(vm.env.RUNNER_VERSION.replace(/^v/, ""));
    await waitFor(`runner ${RUNNER} online in Gitea`, 180_000, async () => (await runners()).find((r) => r.name === RUNNER && r.status === "online"));
    await forge.addOperatorKey();
    expect((await giteaApi(web(), "/admin/users", { auth: admin(), method: "POST", body: { username: "alice", email: "alice@gitea.test", password: "alice-password-1", must_change_password: false } })).status).toBe(201);
    // Registered over https, trusting the stack's CA; so do its jobs (the workflow clones over https).
    expect(await vm.root("grep -o '\"address\": *\"[^\"]*\"' /var/lib/act_runner/.runner")).toMatch(/"https:\/\/gitea\.test:4111\/?"$/);
    const first = await forge.pushNewRepository(REPO, cloneUrl(), { ".gitea/workflows/ci.yml": VAULT.workflowCloningOverHttps }, "vault with a workflow");
    history = [first];
    expect((await giteaApi(web(), `/repos/gitea-admin/${REPO}/actions/secrets/VAULT_TOKEN`, { auth: admin(), method: "PUT", body: { data: VAULT.secret } })).status).toBeLessThan(300);
    expect(await timings.time("a workflow run", () => secretHashAfterPush("read the secret"))).toBe(VAULT.hash);
    expect(VAULT.clonedIn(lastRunLog)).toBe(history[0]);
  });

  it("the backup timer's service makes a backup, and lastBackup names it", async () => {
    await timings.time("scheduled backup", () => vm.asUser(USER, "systemctl --user start gitea-backup.service"));
    await healthy();
    const names = await backups();
    expect(names).toEqual([expect.stringMatching(/^gitea-backup-\d{8}T\d{6}Z-scheduled$/)]);
    expect(await vm.root(`stat -c '%a %U' ${BACKUPS}/${names[0]}/keys.env`)).toBe(`600 ${USER}`);
    const preview = await server.preview(config);
    expect(preview.steps).toEqual([]);
    // `pulumi stack output` after a no-change up, which re-reads the probe's facts.
    await server.up(config);
    expect(server.lastOutputs().lastBackup).toMatch(new RegExp(`^${names[0]} at \\d{4}-\\d\\d-\\d\\dT`));
  });

  it("off-site: every backup is copied to the bucket; an unchanged forge's push adds only what changed, not its repositories; forget keeps offsiteKeep; a failed push keeps the backup, is drift, and up copies it", async () => {
    // The repository was made by the fresh up; the scheduled backup just before was copied.
    const [scheduled] = await backups();
    const first = await offsiteRecord();
    expect([first.push, first.pushed]).toEqual(["ok", scheduled]);
    expect(await vm.root(`ls /tmp/offsite-canary 2>&1 || true`)).toMatch(/No such file/);
    expect(await vm.root(`stat -c '%a %U' /home/${USER}/.config/gitea-homelab/offsite/password /home/${USER}/.config/gitea-homelab/offsite/environment`)).toBe(`600 ${USER}\n600 ${USER}`);
    // 4 MB of random data (incompressible, like packed git objects) in a repository of its own;
    // the next push carries it, and a push of the unchanged forge after it does not again: only
    // what changed (restic's chunks are about 1 MB, so Gitea's database, rewritten at each
    // start, costs a chunk or two).
    const data = randomBytes(4 * 1024 * 1024);
    expect((await giteaApi(web(), "/user/repos", { auth: admin(), method: "POST", body: { name: "offsite-data", auto_init: true } })).status).toBe(201);
    expect((await giteaApi(web(), "/repos/gitea-admin/offsite-data/contents/random.bin", { auth: admin(), method: "POST", body: { content: data.toString("base64"), message: "4 MB" } })).status).toBe(201);
    await timings.time("scheduled backup with its push", () => vm.asUser(USER, "systemctl --user start gitea-backup.service"));
    const grown = await offsiteRecord();
    await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    const unchanged = await offsiteRecord();
    expect(unchanged.pushed).not.toBe(grown.pushed);
    console.log(
      `  off-site pushes: the first ${first.data_added} bytes added of a ${first.backup_bytes}-byte backup; after 4 MB of new data ${grown.data_added} of ${grown.backup_bytes}; unchanged ${unchanged.data_added} of ${unchanged.backup_bytes}`,
    );
    expect(Number(grown.data_added)).toBeGreaterThan(data.length);
    expect(Number(unchanged.data_added)).toBeLessThan(data.length / 2);
    const snapshots = JSON.parse(await resticOnVm("snapshots --json")) as Array<{ short_id: string; tags: string[] }>;
    // offsiteKeep "2 last": of the three pushes, the newest two.
    expect(snapshots.map((x) => x.short_id)).toEqual([grown.snapshot, unchanged.snapshot]);
    expect(snapshots[1].tags).toEqual(expect.arrayContaining(["gitea-homelab", "reason=scheduled", `backup=${unchanged.pushed}`]));
    expect((await server.preview(config)).steps).toEqual([]);

    // The bucket is down: the backup is made and kept, the push recorded as failed.
    await offsite.s3.stop();
    const before = (await offsiteRecord()).pushed;
    await timings.time("scheduled backup, bucket down", () => vm.asUser(USER, "systemctl --user start gitea-backup.service"));
    await healthy();
    const newest = (await backups()).pop()!;
    expect(newest).not.toBe(before);
    expect(await vm.root(`test -f ${BACKUPS}/${newest}/gitea-data.tar && echo kept`)).toBe("kept");
    expect((await offsiteRecord()).push).toBe("failed");
    const drift = await server.preview(config);
    expect(drift.steps.map((x) => `${x.operation} ${x.resource}`)).toEqual(["update gitea-backup-offsite-repository"]);
    expect(drift.steps[0].drift).toContain(`off-site copy: the newest backup ${newest} is not in the repository (last copied: ${before}); the last push failed at `);
    // Back up: the next up copies it, and all is quiet again.
    await offsite.s3.restart();
    const repaired = await timings.time("up copies the missed backup", () => server.up(config));
    expect(ran(repaired)).toEqual(["update gitea-backup-offsite-repository"]);
    expect((await offsiteRecord()).pushed).toBe(newest);
    expect((await server.preview(config)).steps).toEqual([]);
    await server.up(config);
    expect(server.lastOutputs().lastOffsiteBackup).toMatch(new RegExp(`^[0-9a-f]{8} \\(${newest}\\) at \\d{4}-`));
    expect(server.lastOutputs().offsiteRepository).toBe(offsite.s3.repository);
  });

  it("an upgrade to an image that never becomes healthy rolls back to the old image and the pre-upgrade data", async () => {
    // A stand-in for a broken release: the same Gitea whose container never serves HTTP.
    const broken = vm.env.GITEA_IMAGE.replace(/-rootless$/, "-never-healthy");
    await vm.asUser(USER, `sh -c ${JSON.stringify(`printf 'FROM ${vm.env.GITEA_IMAGE}\\nENTRYPOINT ["/bin/sleep", "infinity"]\\n' | podman build --pull=never -q -t ${broken} -f - /tmp >/dev/null`)}`);
    const unitBefore = await vm.root(`cat /home/${USER}/.config/containers/systemd/gitea.container`);
    historyBeforeUpgrade = [...history];
    const failing = { ...config, image: broken, healthTimeoutSeconds: "60" };
    const error = await timings.time("up to a never-healthy image, with the rollback", () => server.up(failing).then(() => undefined, (e: unknown) => e));
    expect(error).toBeInstanceOf(DeploymentError);
    // The provider's error quotes the script too, which has "$image: ROLLED BACK …": the broken
    // image's name before it is only in what the script printed. gitea-health is the step that failed.
    expect(String((error as Error).message)).toMatch(new RegExp(`on ${broken.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: ROLLED BACK to the previous image and the data backed up before the upgrade`));
    expect((error as DeploymentError).report.commands.filter((c) => c.exitCode !== 0).map((c) => c.resource)).toEqual(["gitea-health"]);
    // The provider quotes the command line it ran: one short line, then the script's own line.
    const [quoted, own] = String((error as Error).message).split("\n");
    expect(quoted).toMatch(/^gitea-health: Process exited with status 1: running "sh -c .* gitea-homelab":$/);
    expect(quoted.length).toBeLessThan(500);
    expect(own).toBe("gitea-homelab: Gitea did not become healthy within 60 seconds (gitea-homelab:healthTimeoutSeconds)");
    // The old image runs, on the old unit, with everything in place.
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await vm.root(`cat /home/${USER}/.config/containers/systemd/gitea.container`)).toBe(unitBefore);
    expect(await vm.asUser(USER, "podman container inspect gitea --format '{{.ImageName}}'")).toBe(vm.env.GITEA_IMAGE);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    expect((await giteaApi(web(), "/users/alice", { auth: admin() })).status).toBe(200);
    expect((await backups()).some((n) => n.endsWith("-pre-upgrade"))).toBe(true);
    // The data came back with its keys: a workflow still decrypts the Actions secret.
    expect(await secretHashAfterPush("after the rollback")).toBe(VAULT.hash);
    // The host runs another image than the config asks: preview says so, and up would try again.
    const preview = await server.preview(failing);
    expect(preview.steps.map((s) => s.resource)).toEqual(expect.arrayContaining(["gitea-upgrade"]));
    expect(preview.steps.find((s) => s.resource === "gitea-upgrade")?.drift).toMatch(/Gitea last ran healthy on .*-rootless, expected .*-never-healthy/);
    // Set back, the next up converges and the one after runs nothing.
    await server.up(config);
    expect((await server.up(config)).commands).toEqual([]);
  });

  it("destroy keeps the data; an up from an empty state finds it, with the same keys: the secret still decrypts", async () => {
    const digest = await keysDigest();
    const ca = caCertificate();
    const destroyed = await timings.time("destroy (data kept)", () => server.destroy());
    expect(destroyed.warnings.filter((w) => /PULUMI_COMMAND_STDOUT|AcceptEnv/.test(w))).toEqual([]);
    expect(await vm.root(`ls /home/${USER}/.local/share/containers/storage/volumes | grep gitea | tr '\\n' ' '`)).toBe("gitea-config gitea-data");
    expect(await openPorts()).toBe("runtime: permanent:");
    await server.forgetState();
    await timings.time("up from an empty state on the kept data", () => server.up(config));
    await healthy();
    expect(await keysDigest()).toBe(digest);
    // The CA was kept with the data: the new state reports the same one, and the runner keeps trusting it.
    expect(caCertificate()).toBe(ca);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    // The new state made a new admin password: an up of the wsl stack takes it (its destroy
    // removes the runner from Gitea with it), and changes nothing on the runner's host.
    await timings.time("wsl up after the server's new state", () => wsl.up(wslStackConfig()));
    expect(await vm.root("systemctl is-active act_runner.service")).toBe("active");
    expect(await secretHashAfterPush("after a new state")).toBe(VAULT.hash);
  });

  it("destroying the wsl stack removes the runner from the host and from Gitea", async () => {
    await timings.time("wsl destroy", () => wsl.destroy());
    expect(await vm.root("systemctl is-active act_runner.service || true")).toMatch(/^inactive$/);
    expect((await runners()).filter((r) => r.name === RUNNER)).toEqual([]);
  });

  it("a certificate near its end is renewed by the daily timer, and is drift that up repairs", async () => {
    await plantEndingCertificate();
    expect(await certificateLasts(30)).toBe(false);
    // The timer's own service, started now instead of at its daily time.
    await timings.time("certificate renewal by the timer's service", () => vm.root("systemctl start gitea-homelab-tls-rootless.service"));
    expect(await certificateLasts(300)).toBe(true);
    await healthy();
    await plantEndingCertificate();
    const preview = await server.preview(config);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual(["update gitea-https-certificate"]);
    expect(preview.steps[0].drift).toMatch(/^certificate: ends .*, within 30 days; up renews it$/);
    const repair = await server.up(config);
    expect(ran(repair)).toEqual(["update gitea-https-certificate"]);
    expect(await certificateLasts(300)).toBe(true);
    await healthy();
    expect((await server.preview(config)).steps).toEqual([]);
  });

  it("a new publicHost shows in preview, and up issues a certificate naming it from the same CA", async () => {
    const ca = caCertificate();
    const moved = { ...config, publicHost: "forge.test" };
    const preview = await server.preview(moved);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual(expect.arrayContaining(["update gitea-https-certificate"]));
    await timings.time("publicHost change", () => server.up(moved));
    expect(await curlOnVm("--cacert /tmp/stack-ca.pem --resolve forge.test:4111:127.0.0.1 https://forge.test:4111/api/healthz")).toBe("200 exit=0");
    expect(await curlOnVm("--cacert /tmp/stack-ca.pem https://gitea.test:4111/api/healthz")).toBe("000 exit=60");
    expect(caCertificate()).toBe(ca);
    // Back, as the later steps use gitea.test.
    await server.up(config);
    expect(await curlOnVm("--cacert /tmp/stack-ca.pem https://gitea.test:4111/api/healthz")).toBe("200 exit=0");
  });

  it("a new HTTP port runs only what it affects", async () => {
    config = { ...config, httpPort: "4112" };
    const moved = await timings.time("port change", () => server.up(config));
    httpPort = 4112;
    expect(moved.warnings.filter((w) => /PULUMI_COMMAND_STDOUT|AcceptEnv/.test(w))).toEqual([]);
    expect(ran(moved)).toEqual(["delete gitea-http-port", "replace gitea-health", "replace gitea-http-port", "update gitea-backup-schedule", "update gitea-service-unit"]);
    expect(await openPorts()).toMatch(/^runtime: (?!.*4111)(?=.*4112\/tcp).* permanent: (?!.*4111)(?=.*4112\/tcp)/);
    await healthy();
  });

  it("a backup comes back onto the empty volumes destroy with destroyData leaves", async () => {
    const latest = (await backups()).pop()!;
    const digest = await keysDigest();
    const ca = caCertificate();
    await server.up({ ...config, destroyData: "true" });
    await timings.time("destroy with destroyData", () => server.destroy());
    expect(await vm.asUser(USER, "podman volume ls -q")).toBe("");
    expect(await vm.root(`test -e /home/${USER}/.config/gitea-homelab/tls && echo kept || echo gone`)).toBe("gone");
    expect(await backups()).toContain(latest);
    await server.forgetState();
    // A restoreFrom that is no backup (the backup directory itself) fails the preview from its
    // look at the host, naming the key; nothing ran (the account is still there, no volume made).
    const notABackup = await server.preview({ ...config, restoreFrom: BACKUPS }).then(
      () => undefined,
      (e: DeploymentError) => e,
    );
    expect(notABackup?.message).toContain(`gitea-homelab:restoreFrom: ${BACKUPS} has no manifest, so it is no backup`);
    expect(notABackup?.report.diagnostics.filter((d) => !d.startsWith("error: "))).toEqual([]);
    expect(await vm.asUser(USER, "podman volume ls -q")).toBe("");
    const restoring = { ...config, restoreFrom: `${BACKUPS}/${latest}` };
    const report = await timings.time("up with restoreFrom", () => server.up(restoring));
    expect(ran(report)).toContain("create gitea-backup-restore");
    await healthy();
    // The newest backup is the upgrade's: the history as it was then, the user, the keys.
    expect(latest).toMatch(/-pre-upgrade$/);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(historyBeforeUpgrade);
    expect((await giteaApi(web(), "/users/alice", { auth: admin() })).status).toBe(200);
    expect(await keysDigest()).toBe(digest);
    // The backup held the CA: the same one is back, and Gitea's certificate is its.
    expect(caCertificate()).toBe(ca);
    expect(await curlOnVm("--cacert /tmp/stack-ca.pem https://gitea.test:4112/api/healthz")).toBe("200 exit=0");
    // restoreFrom left set: the next up finds the data and runs nothing.
    expect((await server.up(restoring)).commands).toEqual([]);
  });
});
