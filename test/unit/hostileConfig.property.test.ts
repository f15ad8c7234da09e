/**
 * Property tests: no config value, however hostile, runs anything on a host or breaks a file.
 *
 * For every string config key of both stacks, fast-check generates values made of a valid base
 * and hostile pieces (newlines, quotes, $(…), backticks, ;, %, $VAR, unicode, long runs). Each
 * value alone must be either rejected naming its key, or accepted; the accepted ones together
 * then go through the real stack under Pulumi's mocks (a Fedora/Debian host with a Quadlet or a
 * classic unit, or an Alpine/OpenRC host; the wsl stack), and every command line it registers:
 *   - is split by a real shell into the launcher's arguments, and each script passes bash -n
 *     and shellcheck (the drift probe's local half: sh and shellcheck for sh);
 *   - runs under bash with every system command a logging stub (test/helpers/scriptSandbox),
 *     where the canary (`gh_canary`, or a redirection to the canary path) never fires;
 *   - installs unit files that differ from the ones rendered for the plain base values only in
 *     the lines that carry a value, line for line.
 * GITEA_HOMELAB_PROPERTY_RUNS sets the number of samples (default 10 per stack).
 */
import fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { execFileSync, spawnSync } from "child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { giteaEnvironment } from "../../components/gitea/render";
import { parseRootInvocation } from "../../components/render/shell";
import { giteaTlsEnvironment, servedPaths } from "../../components/tls/render";
import { DEFAULT_SETTINGS, defaultsNotOverridden, recordSetting, settingsEnvironment } from "../../components/gitea/settings";
import { RawConfig, secretProblems, SecretKey as StackSecretKey } from "../../stacks/config";
import { RawTls, SERVER_KEYS, validateServerConfig } from "../../stacks/serverConfig";
import { validateWslConfig, WSL_KEYS } from "../../stacks/wslConfig";
import { openrcArgs } from "../helpers/openrc";
import { runWithMocks } from "../helpers/pulumiMocks";
import { ScriptSandbox } from "../helpers/scriptSandbox";
import { requireTool } from "../helpers/scripts";

const RUNS = Number(process.env.GITEA_HOMELAB_PROPERTY_RUNS ?? 10);
/** The stacks' secret keys, and the off-site repository's (which the server config validates itself). */
type SecretKey = StackSecretKey | "offsitePassword" | "offsiteSshKey" | "offsiteEnvironment";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample";
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----";

/** Valid values every hostile value is built around (secrets included: they are strings too). */
const SERVER_BASE: RawConfig = {
  host: "192.168.1.10",
  port: "22",
  user: "root",
  hostKey: HOST_KEY,
  publicHost: "git.example.com",
  httpPort: "4111",
  sshPort: "3333",
  rootUrl: "https://git.example.com/",
  rootlessUser: "rootless",
  image: "docker.gitea.com/gitea:1.27.3-rootless",
  imageArchive: "/opt/images/gitea.tar",
  unitStyle: "quadlet",
  firewall: "auto",
  firewallZone: "public",
  userns: "keep-id",
  storageDriver: "auto",
  adminUsername: "gitea-admin",
  adminEmail: "admin@example.com",
  database: "sqlite3",
  healthTimeoutSeconds: "600",
  destroyData: "false",
  removeUserOnDestroy: "false",
  backupDir: "/var/backups/gitea-homelab",
  backupKeep: "7",
  backupSchedule: "weekly",
  restoreFrom: "/var/backups/gitea-homelab/gitea-backup-20261127T030000Z-scheduled",
  // Off-site copies over sftp, so the tool's pushes, the secrets' install and the check schedule render.
  offsiteRepository: "sftp://backup@nas.example.com:2222//srv/restic/gitea",
  offsiteKeep: "7 daily, 4 weekly, 12 monthly",
  offsiteCheck: "weekly",
  offsiteHostKey: HOST_KEY,
  allowDowngrade: "false",
  tls: "auto",
  // Used by the acme variant (only warned about under auto).
  acmeEmail: "certs@example.com",
  acmeAcceptTerms: "false",
  acmeDirectory: "https://acme.example.com/directory",
  // Gitea settings (the \`gitea\` object): each path a value of its own here.
  "gitea.APP_NAME": "Home forge",
  "gitea.ui.meta.DESCRIPTION": "A forge at home",
};
/** The acme variant: Gitea gets its certificate by ACME, so the acme keys reach its unit. */
const ACME_BASE: RawConfig = { ...SERVER_BASE, tls: "acme", acmeAcceptTerms: "true" };
/**
 * The default mode, which the base's rootUrl (a reverse proxy) turns off under auto: the
 * server's own CA, whose scripts and tool take publicHost.
 */
const OWN_CA_BASE: RawConfig = { ...SERVER_BASE, tls: "own-ca" };
/** The owner's certificate, for git.example.com: in the given variant publicHost stays that name. */
const GIVEN_BASE: RawConfig = { ...SERVER_BASE, tls: "given" };
const GIVEN_DIR = mkdtempSync(join(tmpdir(), "gh-hostile-given-"));
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "90", "-subj", "/O=Hostile test", "-addext", "subjectAltName=DNS:git.example.com", "-keyout", join(GIVEN_DIR, "key.pem"), "-out", join(GIVEN_DIR, "cert.pem")], { stdio: "ignore" });
const GIVEN_TLS: RawTls = { certificate: readFileSync(join(GIVEN_DIR, "cert.pem"), "utf8"), key: readFileSync(join(GIVEN_DIR, "key.pem"), "utf8") };
rmSync(GIVEN_DIR, { recursive: true, force: true });
const SERVER_SECRETS: Partial<Record<SecretKey, string>> = {
  adminPassword: "correct horse battery",
  privateKey: PRIVATE_KEY,
  // Its base64 ends with one = (bash's read with IFS="=" would drop it).
  offsitePassword: "correct horse battery staple!",
  offsiteSshKey: PRIVATE_KEY,
  offsiteEnvironment: JSON.stringify({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", RESTIC_REST_USERNAME: "gitea" }),
};

const WSL_BASE: RawConfig = {
  host: "192.168.1.20",
  port: "2222",
  user: "root",
  hostKey: HOST_KEY,
  serverStack: "organization/gitea-homelab/server",
  instanceUrl: "http://192.168.1.10:4111/",
  runnerName: "wsl-runner",
  runnerLabels: "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest,self:host",
  runnerCapacity: "2",
  runnerTimeout: "3h",
  runnerBinaryName: "act_runner",
  runnerVersion: "0.2.13",
  runnerUrl: "https://dl.example.com/act_runner/0.2.13/act_runner",
  // sha256 of an empty file: the stubbed curl leaves the download empty, so the install runs on.
  runnerSha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  runnerSourcePath: "",
  runnerInstallDir: "/usr/local/bin",
  registerTimeoutSeconds: "120",
  runnerNetwork: "host",
};
/** The CA the wsl stack is told to trust, so every run renders the trust files too. */
const WSL_CA = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-days", "30", "-subj", "/CN=Hostile test CA"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const WSL_SECRETS: Partial<Record<SecretKey, string>> = { registrationToken: "T0ken".repeat(8), privateKey: PRIVATE_KEY };

let sandbox: ScriptSandbox;
beforeAll(() => {
  requireTool("shellcheck", "shellcheck");
  sandbox = new ScriptSandbox();
  // The certificate volume, which the certificate scripts look for before anything else.
  mkdirSync(join(sandbox.dir, "home", servedPaths().dir), { recursive: true });
});
afterAll(() => sandbox.dispose());

/** Pieces that would run code, split a line, expand in systemd, or just be awkward. */
function hostilePieces(canary: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      "$(gh_canary)",
      "`gh_canary`",
      ";gh_canary;",
      "\ngh_canary\n",
      "\r\ngh_canary",
      "|gh_canary",
      "&&gh_canary&",
      "$(gh_canary$IFS)",
      `$(>${canary})`,
      `;>${canary};`,
      "'$(gh_canary)'",
      '"$(gh_canary)"',
      "\\'`gh_canary`\\'",
      "%h%n%%",
      "$HOME${PATH}$$",
      "\\",
      "'",
      '"',
      " ",
      "\t",
      "\0",
      "#",
      "*?[a]",
      "~root",
      "!!",
      "-- --rm",
      "ünïcødé ✓ 漢字",
      "\u2028",
      "x".repeat(300),
      "GITEA_HOMELAB_EOF",
      "\nGITEA_HOMELAB_EOF\n",
      "[Service]\nExecStart=/bin/gh_canary",
    ),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: "binary", maxLength: 6 }),
  );
}

/** A base value with hostile pieces put in at random places (or the pieces alone). */
function hostileValue(base: string, canary: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fc.array(hostilePieces(canary), { minLength: 1, maxLength: 3 }), fc.nat()).map(([pieces, at]) => {
      const i = base.length === 0 ? 0 : at % (base.length + 1);
      return base.slice(0, i) + pieces.join("") + base.slice(i);
    }),
    fc.array(hostilePieces(canary), { minLength: 1, maxLength: 2 }).map((p) => p.join("")),
  );
}

/** Each run renders the server stack for one: a platform and unit style, or a tls mode (on Fedora). */
const SERVER_VARIANTS = ["fedora", "alpine", "service", "acme", "own-ca", "given"] as const;
type ServerVariant = (typeof SERVER_VARIANTS)[number];

function hostileConfig(base: RawConfig, secrets: Partial<Record<SecretKey, string>>, canary: string): fc.Arbitrary<Record<string, string>> {
  const all = { ...base, ...secrets } as Record<string, string>;
  return fc.record(Object.fromEntries(Object.entries(all).map(([k, v]) => [k, hostileValue(v ?? "", canary)])));
}

type Validate = (raw: RawConfig, secrets: Partial<Record<SecretKey, string>>) => string[];
/** The server config with its `gitea.…` paths put together into the `gitea` object, as Pulumi gives it. */
function validateServerRaw(raw: RawConfig, rawTls: RawTls = {}, secrets: Partial<Record<SecretKey, string>> = {}) {
  const gitea: Record<string, any> = {};
  const rest: RawConfig = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!key.startsWith("gitea.")) {
      rest[key] = value;
      continue;
    }
    const path = key.split(".").slice(1);
    let node = gitea;
    for (const name of path.slice(0, -1)) node = node[name] ??= {};
    node[path[path.length - 1]] = value;
  }
  const offsite = { password: secrets.offsitePassword, sshKey: secrets.offsiteSshKey, environment: secrets.offsiteEnvironment };
  return validateServerConfig(rest, { json: JSON.stringify(gitea), secret: false }, rawTls, offsite);
}
const validateServer: Validate = (raw, secrets) => [...validateServerRaw(raw, {}, secrets).problems, ...secretProblems(secrets)];
const validateGiven: Validate = (raw, secrets) => [...validateServerRaw(raw, GIVEN_TLS, secrets).problems, ...secretProblems(secrets)];
const validateWsl: Validate = (raw, secrets) => [...validateWslConfig(raw).problems, ...secretProblems(secrets)];

/**
 * Puts each hostile value alone into the base config: rejected (naming its key, never echoing a
 * secret) or kept. Returns the config of every kept value.
 */
function keepAccepted(base: RawConfig, baseSecrets: Partial<Record<SecretKey, string>>, hostile: Record<string, string>, validate: Validate) {
  const raw: RawConfig = { ...base };
  const secrets = { ...baseSecrets };
  const accepted: string[] = [];
  for (const [key, value] of Object.entries(hostile)) {
    // Blank is unset, which may change what is rendered (not a hostile value): keep the base.
    if (value.trim() === "") continue;
    const isSecret = key in baseSecrets;
    const problems = isSecret ? validate(base, { ...baseSecrets, [key]: value }) : validate({ ...base, [key]: value }, baseSecrets);
    if (problems.length > 0) {
      expect(problems.some((p) => p.includes(`gitea-homelab:${key}`)), `${key}=${JSON.stringify(value)} rejected without naming the key: ${problems.join("; ")}`).toBe(true);
      if (isSecret && value.trim().length > 3) for (const p of problems) expect(p).not.toContain(value.trim());
      continue;
    }
    accepted.push(key);
    if (isSecret) secrets[key as SecretKey] = value;
    else raw[key] = value;
  }
  return { raw, secrets, accepted };
}

const PLATFORMS = {
  fedora: ["os_id=fedora", "os_like=", "init=systemd"],
  debian: ["os_id=debian", "os_like=", "init=systemd"],
  alpine: ["os_id=alpine", "os_like=", "init=openrc"],
};
function session(platform: keyof typeof PLATFORMS): string {
  return ["@@gitea-homelab-probe begin @host", ...PLATFORMS[platform], "bash=present", "@@gitea-homelab-probe end @host", "@@gitea-homelab-session exit 0"].join("\n");
}

/** Every command line the stack registers (create and delete) and the drift probe's local script. */
async function renderServer(raw: RawConfig, secrets: Partial<Record<SecretKey, string>>, platform: keyof typeof PLATFORMS, rawTls: RawTls = {}) {
  const run = await runWithMocks(
    {},
    async () => {
      const { buildServerStack } = await import("../../stacks/server");
      const { settings } = validateServerRaw(raw, rawTls, secrets);
      const tlsKey = rawTls.key === undefined ? pulumi.output(undefined) : pulumi.secret(rawTls.key);
      const { parseEnvironment } = await import("../../components/offsite/settings");
      return buildServerStack(settings, {
        privateKey: pulumi.secret(secrets.privateKey),
        adminPassword: pulumi.secret(secrets.adminPassword),
        tlsKey,
        offsitePassword: pulumi.secret(secrets.offsitePassword ?? ""),
        offsiteEnvironment: pulumi.secret(parseEnvironment(secrets.offsiteEnvironment, () => undefined)),
        offsiteSshKey: pulumi.secret(secrets.offsiteSshKey),
      });
    },
    { probeStdout: () => session(platform) },
  );
  return collect(run);
}

async function renderWsl(raw: RawConfig, secrets: Partial<Record<SecretKey, string>>) {
  const run = await runWithMocks(
    {},
    async () => {
      const { buildWslStack } = await import("../../stacks/wsl");
      const { settings } = validateWslConfig(raw, WSL_CA);
      return buildWslStack(settings, { privateKey: pulumi.secret(secrets.privateKey), registrationToken: pulumi.secret(secrets.registrationToken) });
    },
    { stack: "wsl", probeStdout: () => session("fedora") },
  );
  return collect(run);
}

function collect(run: Awaited<ReturnType<typeof runWithMocks>>) {
  // Every script comes on the command's stdin: the create's, its record, the delete's, then the payload.
  const commands = run.ofType("command:remote:Command").flatMap((r) => [
    { name: `${r.name}.create`, line: r.inputs.create as string, stdin: (r.inputs.stdin as string) ?? "", delete: false },
    ...(typeof r.inputs.delete === "string" ? [{ name: `${r.name}.delete`, line: r.inputs.delete as string, stdin: (r.inputs.stdin as string) ?? "", delete: true }] : []),
  ]);
  const probes = run.invokes.filter((i) => i.token === "command:local:run").map((i) => i.inputs.command as string);
  return { commands, probes, outputs: run.outputs };
}

function shellcheck(files: string[], shell: "bash" | "sh"): string {
  const lint = spawnSync("shellcheck", [`--shell=${shell}`, "--severity=style", "--format=gcc", ...files], { encoding: "utf8" });
  return lint.stdout;
}

/**
 * Runs every script of every command line in the sandbox; returns the files they installed.
 * Asserts bash -n, shellcheck and that the canary never fired.
 */
function exercise(rendered: Awaited<ReturnType<typeof collect>>, label: string): Record<string, string> {
  const files: string[] = [];
  const scripts: Array<{ name: string; script: string; stdin: string }> = [];
  for (const c of rendered.commands) {
    const argv = sandbox.argv(c.line).map(toolsInSandbox);
    expect(argv.slice(0, 3), `${label} ${c.name}: launcher`).toEqual(["-c", argv[1], "gitea-homelab"]);
    expect(argv.length, `${label} ${c.name}: the launcher and one word at most`).toBeLessThanOrEqual(4);
    const sent = parseRootInvocation(c.stdin);
    expect(sent, `${label} ${c.name}: stdin as asRootCommand frames it`).toBeDefined();
    if (c.delete) {
      expect(argv[3], `${label} ${c.name}: the delete's word`).toBe("delete");
      expect(sent!.onDelete, `${label} ${c.name}: its script in stdin`).toBeDefined();
      scripts.push({ name: c.name, script: toolsInSandbox(sent!.onDelete!), stdin: sent!.payload });
      continue;
    }
    // The one word a create's command line carries is its drift marker, never code.
    if (argv[3] !== undefined) expect(argv[3], `${label} ${c.name}: marker`).toMatch(/^host_state_before_this_converge=\d+ /);
    scripts.push({ name: c.name, script: toolsInSandbox(sent!.script), stdin: sent!.payload });
    if (sent!.after !== undefined) scripts.push({ name: `${c.name}.record`, script: toolsInSandbox(sent!.after), stdin: "" });
  }
  for (const local of rendered.probes) {
    const file = join(sandbox.dir, "tmp", `probe-local-${files.length}.sh`);
    writeFileSync(file, local);
    expect(shellcheck([file], "sh"), `${label}: local probe`).toBe("");
    const run = sandbox.runSh(local, "");
    expect(run.timedOut).toBe(false);
    expect(run.remote, `${label}: the probe opened no ssh session`).toBeDefined();
    const remote = sandbox.argv(run.remote!);
    scripts.push({ name: "probe-session", script: remote[3], stdin: "" });
  }
  scripts.forEach((s, i) => {
    const file = join(sandbox.dir, "tmp", `s${i}.sh`);
    writeFileSync(file, s.script);
    files.push(file);
    const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    expect(syntax.stderr, `${label} ${s.name}: bash -n`).toBe("");
  });
  expect(shellcheck(files, "bash"), `${label}: shellcheck`).toBe("");
  // "absent" first: what "present" installs is what the shape checks compare.
  for (const mode of ["absent", "present"] as const) {
    sandbox.takeInstalled();
    for (const s of scripts) {
      const run = sandbox.runBash(s.script, s.stdin, mode);
      expect(run.timedOut, `${label} ${s.name} (${mode}) did not finish`).toBe(false);
      expect(sandbox.canaryFired(), `${label} ${s.name} (${mode}) ran injected code`).toBe(false);
    }
  }
  const installed = sandbox.takeInstalled();
  // The tools a script installed run later (timer, upgrade, restore): the backup tool's every
  // subcommand, and the own-ca certificate tool.
  const tools = Object.entries(installed).flatMap(([path, tool]) =>
    path.startsWith(`${sandbox.standIn([])}/gitea-backup-`)
      ? [
          ["backup", "scheduled"],
          ["restore", "/var/backups/x"],
          ["prepare-upgrade", "docker.io/gitea/gitea:9.9.9", "false"],
          ["rollback"],
          ["deployed", "docker.io/gitea/gitea:9.9.9"],
          ["offsite-init"],
          ["offsite-sync"],
          ["offsite-check"],
          ["offsite-restore", "latest"],
        ].map((args) => ({ path, tool, args }))
      : path.startsWith(`${sandbox.standIn([])}/gitea-tls-`)
        ? [{ path, tool, args: [] as string[] }]
        : [],
  );
  for (const { path, tool, args } of tools) {
    for (const mode of ["absent", "present"] as const) {
      const run = sandbox.runBash(tool, "", mode, args);
      expect(run.timedOut, `${label} ${path} ${args[0] ?? ""} (${mode}) did not finish`).toBe(false);
      expect(sandbox.canaryFired(), `${label} ${path} ${args[0] ?? ""} (${mode}) ran injected code`).toBe(false);
    }
    sandbox.takeInstalled();
  }
  return installed;
}

/**
 * Runs F with openssl real in the sandbox when ON: the certificate scripts (own-ca, given) stop at
 * their openssl check without it; with it, the acme check would wait out its whole timeout.
 */
function withOpenssl<T>(on: boolean, f: () => T): T {
  sandbox.realTool("openssl", on);
  try {
    return f();
  } finally {
    sandbox.realTool("openssl", false);
  }
}

/** Scripts run the backup tool from a root-owned directory; in the sandbox they run a logging stand-in. */
function toolsInSandbox(text: string): string {
  const names = [...text.matchAll(/\/usr\/local\/libexec\/gitea-homelab\/([A-Za-z0-9_.-]+)/g)].map((m) => m[1]);
  return names.length === 0 ? text : text.split("/usr/local/libexec/gitea-homelab").join(sandbox.standIn(names));
}

/** Unit and config files must keep their shape: same lines, same keys; only values differ. */
function expectSameShape(file: string, hostile: string, plain: string): void {
  const a = hostile.split("\n");
  const b = plain.split("\n");
  expect(a.length, `${file}: line count`).toBe(b.length);
  // The part before the value: an INI or sh key, a YAML key, or a YAML list item's dash.
  const key = (line: string) => (/^(\s*[A-Za-z_][A-Za-z0-9_.-]*\s*[=:]|\s*- )/.exec(line)?.[1] ?? line);
  a.forEach((line, i) => {
    if (line !== b[i]) expect(key(line), `${file} line ${i + 1}`).toBe(key(b[i]));
  });
}

/**
 * Reads an ExecStart= line (or a Quadlet setting that lands there) the way systemd does: split
 * into words, quotes removed with C escapes, then specifiers and variables. %% and $$ are
 * literal; any other %X, ${NAME} or whole-word $NAME is expanded, which shows here as «…», so
 * a value that escaped its escaping cannot compare equal.
 */
function systemdWords(value: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
    const expanded = /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(raw)
      ? `«${raw}»`
      : raw.replace(/%(.)|\$(\$|\{[^}]*\})/g, (_all, spec: string | undefined, dollar: string | undefined) =>
          spec !== undefined ? (spec === "%" ? "%" : `«%${spec}»`) : dollar === "$" ? "$" : `«$${dollar}»`,
        );
    words.push(expanded);
  }
  return words;
}

/** KEY=VALUE settings Gitea gets from a unit file or an OpenRC init script, as systemd/openrc-run read them. */
function containerEnvironment(path: string, content: string): string[] {
  if (path.endsWith(".container")) return content.split("\n").filter((l) => l.startsWith("Environment=")).flatMap((l) => systemdWords(l.slice("Environment=".length)));
  if (path.endsWith(".service")) {
    const exec = content.split("\n").find((l) => l.startsWith("ExecStart="))!;
    return systemdWords(exec.slice("ExecStart=".length)).filter((w) => w.startsWith("--env=")).map((w) => w.slice("--env=".length));
  }
  // OpenRC: what openrc-run's eval hands podman.
  return openrcArgs(content).filter((w) => w.startsWith("--env=")).map((w) => w.slice("--env=".length));
}

/** Every non-secret setting reaches Gitea exactly as validated, whatever it holds. */
function expectExactEnvironment(installed: Record<string, string>, expected: Record<string, string>): void {
  const unit = Object.entries(installed).find(([p]) => /\/gitea\.(container|service)$|\/init\.d\/gitea$/.test(p));
  if (unit === undefined) return;
  expect(containerEnvironment(unit[0], unit[1]).sort(), unit[0]).toEqual(Object.entries(expected).map(([k, v]) => `${k}=${v}`).sort());
}

/**
 * Compares the files both runs installed. (A hostile value may legitimately stop a script
 * earlier in the sandbox, e.g. a sha256 the stubbed download does not match, or a source path
 * that exists on this machine; which files a run reaches is not the property.)
 */
function expectFilesKeepShape(installed: Record<string, string>, plain: Record<string, string>): void {
  for (const [path, content] of Object.entries(installed)) {
    if (!(path in plain)) continue;
    if (path.endsWith(".yaml")) {
      // YAML: the same document but for the values; labels may differ in number.
      const shape = (doc: any) => JSON.stringify({ ...doc, runner: { ...doc.runner, labels: "*" } }, (_k, v) => (typeof v === "string" || typeof v === "number" ? typeof v : v));
      expect(shape(parse(content)), path).toBe(shape(parse(plain[path])));
    } else if (/\.(container|service)$|\/(init|conf)\.d\//.test(path)) expectSameShape(path, content, plain[path]);
  }
}

/**
 * Hostile values that pass validation, so every run exercises the accepted path on each variant
 * (a % in a URL must be a valid escape even once decoded: Gitea would refuse it).
 */
const SERVER_EXAMPLE_HOSTILE: Record<string, string> = {
  rootUrl: "https://git.example.com/$(gh_canary)/;gh_canary;/%2525h/$HOME/${PATH}/'q'/",
  adminEmail: "ops`gh_canary`$USER'x&y|z@example.com",
  acmeEmail: "certs`gh_canary`${HOME}'x%h@example.com",
  acmeDirectory: "https://acme.example.com/$(gh_canary)/;gh_canary;/%25h/$HOME/directory",
  adminPassword: `p4ss'$(gh_canary)"\`gh_canary\`;`,
  "gitea.ui.meta.DESCRIPTION": "$(gh_canary) `gh_canary` ;gh_canary; %h %% $HOME ${PATH} 'q' \"q\" # ; \\",
};
const SERVER_EXAMPLE: Record<string, string> = { ...(SERVER_BASE as Record<string, string>), ...(SERVER_SECRETS as Record<string, string>), ...SERVER_EXAMPLE_HOSTILE };

/** The config a run renders: the hostile values its variant accepts, on that variant's base. */
function prepareServer(hostile: Record<string, string>, variant: ServerVariant) {
  // The unit style and the tls mode are choices of the variant, not hostile values here.
  delete hostile.unitStyle;
  if (variant === "acme" || variant === "own-ca" || variant === "given") delete hostile.tls;
  // The given certificate names git.example.com: publicHost stays that name.
  if (variant === "given") delete hostile.publicHost;
  const base = variant === "acme" ? ACME_BASE : variant === "own-ca" ? OWN_CA_BASE : variant === "given" ? GIVEN_BASE : SERVER_BASE;
  const rawTls = variant === "given" ? GIVEN_TLS : {};
  const validate = variant === "given" ? validateGiven : validateServer;
  const { raw, secrets, accepted } = keepAccepted(base, SERVER_SECRETS, hostile, validate);
  if (variant === "service") raw.unitStyle = "service";
  // On OpenRC the schedule is one of cron's periodic names, checked at preview (alpineStack.test.ts).
  if (variant === "alpine" && !["hourly", "daily", "weekly", "monthly", "off"].includes(raw.backupSchedule ?? "")) raw.backupSchedule = "weekly";
  if (variant === "alpine" && !["hourly", "daily", "weekly", "monthly", "off"].includes(raw.offsiteCheck ?? "")) raw.offsiteCheck = "weekly";
  return { raw, secrets, accepted, rawTls, validate };
}

describe("hostile values in every string config key", () => {
  const canary = () => sandbox.canary;

  it("server stack: rejected naming the key, or rendered into scripts and units that stay intact and run nothing", async () => {
    const plain: Record<string, Record<string, string>> = {};
    for (const platform of ["fedora", "alpine"] as const) plain[platform] = exercise(await renderServer(SERVER_BASE, SERVER_SECRETS, platform), `plain ${platform}`);
    plain.service = exercise(await renderServer({ ...SERVER_BASE, unitStyle: "service" }, SERVER_SECRETS, "debian"), "plain service");
    plain.acme = exercise(await renderServer(ACME_BASE, SERVER_SECRETS, "fedora"), "plain acme");
    const plainOwnCa = await renderServer(OWN_CA_BASE, SERVER_SECRETS, "fedora");
    plain["own-ca"] = withOpenssl(true, () => exercise(plainOwnCa, "plain own-ca"));
    const plainGiven = await renderServer(GIVEN_BASE, SERVER_SECRETS, "fedora", GIVEN_TLS);
    plain.given = withOpenssl(true, () => exercise(plainGiven, "plain given"));
    // The examples are accepted whole: one that is refused runs only the base values.
    for (const variant of SERVER_VARIANTS) expect(prepareServer({ ...SERVER_EXAMPLE }, variant).accepted, `${variant} example`).toEqual(expect.arrayContaining(Object.keys(SERVER_EXAMPLE_HOSTILE)));
    await fc.assert(
      fc.asyncProperty(hostileConfig(SERVER_BASE, SERVER_SECRETS, canary()), fc.constantFrom(...SERVER_VARIANTS), async (hostile, variant) => {
        const { raw, secrets, rawTls, validate } = prepareServer(hostile, variant);
        expect(validate(raw, secrets), "values accepted one by one are accepted together").toEqual([]);
        const rendered = await renderServer(raw, secrets, variant === "service" ? "debian" : variant === "alpine" ? "alpine" : "fedora", rawTls);
        const installed = withOpenssl(variant === "own-ca" || variant === "given", () => exercise(rendered, `server ${variant} ${JSON.stringify(hostile)}`));
        expectFilesKeepShape(installed, plain[variant]);
        const { settings } = validateServerRaw(raw, rawTls);
        if (variant === "acme" || variant === "own-ca" || variant === "given") expect(settings.tls.mode, "the variant's tls mode").toBe(variant);
        expectExactEnvironment(installed, {
          ...giteaEnvironment({ publicHost: settings.publicHost, rootUrl: settings.rootUrl, sshPort: settings.sshPort, database: settings.database }),
          ...giteaTlsEnvironment(settings.tls),
          ...settingsEnvironment(defaultsNotOverridden(settings.gitea.settings)),
          ...settingsEnvironment([recordSetting([...DEFAULT_SETTINGS, ...settings.gitea.settings])]),
          ...settingsEnvironment(settings.gitea.settings),
        });
        expect(settings.gitea.settings.length, "the gitea settings reach the unit").toBe(Object.keys(raw).filter((k) => k.startsWith("gitea.")).length);
      }),
      {
        numRuns: RUNS,
        endOnFailure: true,
        // Values that pass validation, so every run exercises the accepted path on each unit style.
        examples: SERVER_VARIANTS.map((variant): [Record<string, string>, ServerVariant] => [{ ...SERVER_EXAMPLE }, variant]),
      },
    );
  }, 600_000);

  it("wsl stack: rejected naming the key, or rendered into scripts and units that stay intact and run nothing", async () => {
    const plain = exercise(await renderWsl(WSL_BASE, WSL_SECRETS), "plain wsl");
    // The first example is accepted whole (see SERVER_EXAMPLE_HOSTILE).
    const wslExample = { instanceUrl: "http://192.168.1.10:4111/$(gh_canary);gh_canary;'%2525h'/", runnerLabels: "other:docker://node:20,self:host", registrationToken: "$(gh_canary)`gh_canary`;gh_canary;'\"xxxxxxxxxxxxxxx" };
    expect(keepAccepted(WSL_BASE, WSL_SECRETS, { ...wslExample }, validateWsl).accepted).toEqual(Object.keys(wslExample));
    await fc.assert(
      fc.asyncProperty(hostileConfig(WSL_BASE, WSL_SECRETS, canary()), async (hostile) => {
        const { raw, secrets } = keepAccepted(WSL_BASE, WSL_SECRETS, hostile, validateWsl);
        expect(validateWsl(raw, secrets), "values accepted one by one are accepted together").toEqual([]);
        const installed = exercise(await renderWsl(raw, secrets), `wsl ${JSON.stringify(hostile)}`);
        expectFilesKeepShape(installed, plain);
      }),
      {
        numRuns: RUNS,
        endOnFailure: true,
        examples: [
          [
            { ...(WSL_BASE as Record<string, string>), ...(WSL_SECRETS as Record<string, string>), ...wslExample },
          ],
          // Seed 1605216019, path "2" (issue 27): a label that is a command's name, once rendered bare (SC2209).
          [{ ...(WSL_BASE as Record<string, string>), ...(WSL_SECRETS as Record<string, string>), runnerLabels: "pr" }],
        ],
      },
    );
  }, 600_000);

  it("the plain configs install every unit, init script and config file (the shape checks have something to compare)", async () => {
    const server = exercise(await renderServer(SERVER_BASE, SERVER_SECRETS, "fedora"), "plain fedora");
    expect(Object.keys(server).filter((p) => p.endsWith(".container"))).toHaveLength(1);
    const alpine = exercise(await renderServer(SERVER_BASE, SERVER_SECRETS, "alpine"), "plain alpine");
    expect(Object.keys(alpine)).toEqual(expect.arrayContaining(["/etc/init.d/gitea", "/etc/conf.d/gitea", "/etc/periodic/weekly/gitea-offsite-check-rootless"]));
    // Off-site copies: the repository's secrets (from the payload) and the check's timer.
    const offsiteDir = `${sandbox.dir}/home/.config/gitea-homelab/offsite`;
    expect(server[`${offsiteDir}/password`]).toBe(SERVER_SECRETS.offsitePassword);
    expect(server[`${offsiteDir}/ssh-key`]).toBe(`${SERVER_SECRETS.offsiteSshKey}\n`);
    expect(server[`${offsiteDir}/environment`]).toBe("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nRESTIC_REST_USERNAME=gitea\n");
    expect(server[`${offsiteDir}/known_hosts`]).toBe(`gitea-homelab-offsite ${HOST_KEY}\n`);
    expect(Object.keys(server)).toEqual(expect.arrayContaining([`${sandbox.dir}/home/.config/systemd/user/gitea-offsite-check.timer`]));
    // The tls variants reach their certificate scripts' work: own-ca's tool and timer, the given chain.
    const ownCaRendered = await renderServer(OWN_CA_BASE, SERVER_SECRETS, "fedora");
    const ownCa = withOpenssl(true, () => exercise(ownCaRendered, "plain own-ca"));
    expect(Object.keys(ownCa)).toEqual(expect.arrayContaining([`${sandbox.standIn([])}/gitea-tls-rootless`, "/etc/systemd/system/gitea-homelab-tls-rootless.timer"]));
    const givenRendered = await renderServer(GIVEN_BASE, SERVER_SECRETS, "fedora", GIVEN_TLS);
    const given = withOpenssl(true, () => exercise(givenRendered, "plain given"));
    expect(given[`${sandbox.dir}/home/${servedPaths().cert}`]).toBe(GIVEN_TLS.certificate);
    const wsl = exercise(await renderWsl(WSL_BASE, WSL_SECRETS), "plain wsl");
    expect(Object.keys(wsl)).toEqual(expect.arrayContaining(["/etc/act_runner/config.yaml", "/etc/systemd/system/act_runner.service"]));
  }, 120_000);

  it("covers every string key the stacks read", () => {
    expect(Object.keys(SERVER_BASE).filter((k) => !k.startsWith("gitea.")).sort()).toEqual([...SERVER_KEYS].sort());
    expect(Object.keys(WSL_BASE).sort()).toEqual([...WSL_KEYS].sort());
  });
});
