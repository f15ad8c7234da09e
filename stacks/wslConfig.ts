/**
 * The wsl stack's settings: the runner host, where the Gitea instance and its registration
 * token come from, and the runner binary. Pure validation; `readWslConfig` feeds it Pulumi config.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  checkHttpUrl,
  CONNECTION_KEYS,
  ConfigError,
  ConfigReader,
  ConnectionSettings,
  isLoopbackOrUnspecified,
  shown,
  parseImageReference,
  PROJECT,
  RawConfig,
  readConnection,
  readRawConfig,
  readRawSecrets,
  readSecret,
  secretProblems,
  VERSION,
} from "./config";
import { checkCaCertificate } from "../components/tls/certificate";

/**
 * The runner the defaults name: the one CI builds and runs (gitea.com/gitea/runner, pinned in
 * tools/gitea-runner/go.mod and built as `gitea-runner` by tools/build.sh).
 */
export const WSL_DEFAULTS = {
  serverStack: "organization/gitea-homelab/server",
  runnerName: "wsl-runner",
  runnerLabels: "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
  runnerCapacity: 1,
  runnerTimeout: "3h",
  runnerBinaryName: "gitea-runner",
  runnerVersion: "1.0.8",
  runnerInstallDir: "/usr/local/bin",
  registerTimeoutSeconds: 120,
  runnerNetwork: "",
};

export const WSL_KEYS = [
  ...CONNECTION_KEYS,
  "serverStack",
  "instanceUrl",
  "runnerName",
  "runnerLabels",
  "runnerCapacity",
  "runnerTimeout",
  "runnerBinaryName",
  "runnerVersion",
  "runnerUrl",
  "runnerSha256",
  "runnerSourcePath",
  "runnerInstallDir",
  "registerTimeoutSeconds",
  "runnerNetwork",
] as const;

/**
 * The defaults before the runner's rename (gitea.com/gitea/act_runner, 0.x): a stack that set
 * them keeps that runner; one that took them gets the new defaults, and its install removes the
 * `act_runner` binary the unit ran (RunnerSettings.replacedBinaryPath).
 */
export const RUNNER_BEFORE_RENAME = { binaryName: "act_runner", version: "0.2.13" } as const;

/** What to do when systemd is not PID 1 inside WSL: nothing inside the VM can fix that. */
export const WSL_SYSTEMD_ADVICE =
  "in WSL put '[boot]' and 'systemd=true' in /etc/wsl.conf, then run 'wsl --shutdown' in Windows and start the VM again; " +
  "also set 'vmIdleTimeout=-1' under [wsl2] in %UserProfile%\\.wslconfig, or WSL stops the VM and the runner with it";

/**
 * Job containers reach Gitea by this URL, so it must not point at themselves; the first problem
 * with it, or undefined. Used for `instanceUrl` and for the server stack's `giteaUrl` output.
 */
export function instanceUrlProblem(url: string): string | undefined {
  const checked = checkHttpUrl(url, { base: true, example: "http://192.168.1.10:4111/" });
  if ("problem" in checked) return checked.problem;
  const host = checked.url.hostname;
  if (isLoopbackOrUnspecified(host)) {
    return `must not be ${host}: the runner and its job containers would reach themselves; use Gitea's ROOT_URL (e.g. http://192.168.1.10:4111/)`;
  }
  return undefined;
}

/** The sha256 a user pasted: YAML reads an unquoted all-digit value as a number, which drops it. */
function sha256Hint(raw: string): string {
  return /^\d+$/.test(raw) && raw.length < 64
    ? ` (${shown(raw)} looks like a number YAML converted: quote the value in Pulumi.<stack>.yaml, or set it with pulumi config set)`
    : "";
}

/**
 * Where Gitea publishes a runner release: the runner's release config (.goreleaser.yaml of
 * gitea.com/gitea/runner v1.0.8) uploads `gitea-runner/VERSION/gitea-runner-VERSION-linux-amd64`
 * (and a `.sha256` beside it) to dl.gitea.com, the layout act_runner's releases had under
 * `act_runner/`. VERSION is the tag without its `v` (goreleaser's .Version).
 */
export function defaultRunnerUrl(binaryName: string, version: string): string {
  const v = version.replace(/^v/, "");
  return `https://dl.gitea.com/${binaryName}/${v}/${binaryName}-${v}-linux-amd64`;
}

/**
 * The default URL of a name and version that were never released together: gitea-runner's
 * releases are 1.x (the rename came with 1.0.0), act_runner's are 0.x. A stack that set only
 * runnerVersion 0.2.13 (as Pulumi.wsl.yaml once showed) while runnerBinaryName's default became
 * gitea-runner meets this; so does one that set only runnerBinaryName act_runner. A warning at
 * preview, before the download fails: not a problem, since each key's value is valid alone.
 */
function runnerReleaseMismatch(binaryName: string, version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  const renamed = WSL_DEFAULTS.runnerBinaryName;
  const old = RUNNER_BEFORE_RENAME.binaryName;
  if (binaryName === renamed && major === 0) {
    return `${shown(version)} is a release of ${old}, from before the runner's rename to ${renamed} (whose releases are 1.x): the default URL ${defaultRunnerUrl(binaryName, version)} names no release, and the download will fail; to keep that runner set gitea-homelab:runnerBinaryName to ${old}, for the current one runnerVersion to ${WSL_DEFAULTS.runnerVersion} with its runnerSha256`;
  }
  if (binaryName === old && major >= 1) {
    return `${shown(version)} is a release of ${renamed} (the runner's name since 1.0.0), not of ${old} (0.x): the default URL ${defaultRunnerUrl(binaryName, version)} names no release, and the download will fail; set gitea-homelab:runnerBinaryName to ${renamed}, or runnerVersion to ${RUNNER_BEFORE_RENAME.version} to keep ${old}`;
  }
  return undefined;
}

export interface WslSettings {
  connection: ConnectionSettings;
  /** Where the instance URL and token come from. */
  instance: { kind: "stack"; serverStack: string } | { kind: "config"; instanceUrl: string };
  runnerName: string;
  labels: string[];
  capacity: number;
  timeout: string;
  binaryName: string;
  version: string;
  binaryPath: string;
  /** The binary the old default name put beside it (RUNNER_BEFORE_RENAME), when binaryPath is another. */
  replacedBinaryPath?: string;
  source: { url: string; sha256: string } | { sourcePath: string };
  registerTimeoutSeconds: number;
  /** The runner's container.network: "" (Podman's default), host, or a network's name. */
  network: string;
  /** config caCertificate: the CA of Gitea's certificate; with a server stack, its caCertificate output otherwise. */
  caCertificate?: string;
}

export function validateWslConfig(raw: RawConfig, rawCaCertificate?: string): { settings: WslSettings; problems: string[]; warnings: string[] } {
  const r = new ConfigReader(raw);
  const d = WSL_DEFAULTS;
  const connection = readConnection(r);

  const instanceUrl = r.optional("instanceUrl");
  let instance: WslSettings["instance"];
  if (instanceUrl !== undefined) {
    const problem = instanceUrlProblem(instanceUrl);
    if (problem) r.problem("instanceUrl", problem);
    const href = problem ? instanceUrl : new URL(instanceUrl).href;
    instance = { kind: "config", instanceUrl: href.endsWith("/") ? href : `${href}/` };
  } else {
    const serverStack = r.matching("serverStack", r.string("serverStack", d.serverStack), /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+){0,2}$/, "a stack name like organization/gitea-homelab/server");
    instance = { kind: "stack", serverStack };
  }

  const runnerName = r.matching("runnerName", r.string("runnerName", d.runnerName), /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a runner name (letters, digits, . _ -)");
  const labels = r
    .string("runnerLabels", d.runnerLabels)
    .split(",")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (labels.length === 0) r.problem("runnerLabels", "needs at least one label");
  for (const label of labels) {
    const m = /^([A-Za-z0-9._-]+)(?::(host|docker:\/\/(.*)))?$/.exec(label);
    if (!m || (m[3] !== undefined && parseImageReference(m[3]) === undefined)) {
      r.problem("runnerLabels", `must be comma-separated labels like "ubuntu-latest:docker://IMAGE" or "NAME:host" (IMAGE an image reference), got ${shown(label)}`);
    }
  }
  const capacity = r.int("runnerCapacity", d.runnerCapacity, 1, 64);
  const timeout = r.matching("runnerTimeout", r.string("runnerTimeout", d.runnerTimeout), /^(\d+h)?(\d+m)?(\d+s)?$/, 'a duration like "3h" or "90m"');
  const binaryName = r.matching("runnerBinaryName", r.string("runnerBinaryName", d.runnerBinaryName), /^[A-Za-z0-9][A-Za-z0-9._-]*$/, "a file name (letters, digits, . _ -, not starting with . or -)");
  const version = r.matching("runnerVersion", r.string("runnerVersion", d.runnerVersion), VERSION, "a release version like 1.0.8 or v1.0.8");
  const installDir = r.absolutePath("runnerInstallDir", r.string("runnerInstallDir", d.runnerInstallDir), "the directory the runner binary is installed to");

  const sourcePath = r.optional("runnerSourcePath");
  let source: WslSettings["source"];
  if (sourcePath !== undefined) {
    r.absolutePath("runnerSourcePath", sourcePath, "the runner binary's path on the runner host");
    source = { sourcePath };
  } else {
    const explicitUrl = r.optional("runnerUrl");
    // Normalised (spaces percent-encoded, host lower-cased) so curl gets a well-formed URL.
    const parsed = explicitUrl === undefined ? undefined : r.httpUrl("runnerUrl", explicitUrl, { base: false, example: defaultRunnerUrl(d.runnerBinaryName, d.runnerVersion) });
    const url = parsed?.href ?? explicitUrl ?? defaultRunnerUrl(binaryName, version);
    const mismatch = explicitUrl === undefined ? runnerReleaseMismatch(binaryName, version) : undefined;
    if (mismatch) r.warn("runnerVersion", mismatch);
    const rawSha256 = r.optional("runnerSha256") ?? "";
    const sha256 = rawSha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      r.problem(
        "runnerSha256",
        `must be the sha256 of the runner binary (64 hex digits; the release publishes it beside the binary), or set gitea-homelab:runnerSourcePath to a binary already on the host${sha256Hint(rawSha256)}`,
      );
    }
    source = { url, sha256 };
  }
  const registerTimeoutSeconds = r.int("registerTimeoutSeconds", d.registerTimeoutSeconds, 10, 3600);
  const network = r.matching("runnerNetwork", r.string("runnerNetwork", d.runnerNetwork), /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$/, "a Podman network name, or host");
  let caCertificate: string | undefined;
  if (rawCaCertificate !== undefined && rawCaCertificate.trim() !== "") {
    const checked = checkCaCertificate(rawCaCertificate);
    if ("problem" in checked) r.problem("caCertificate", checked.problem);
    else caCertificate = checked.certificate;
  }

  const binaryDir = installDir.replace(/\/$/, "");
  const binaryPath = `${binaryDir}/${binaryName}`;
  const oldBinaryPath = `${binaryDir}/${RUNNER_BEFORE_RENAME.binaryName}`;
  return {
    settings: {
      connection,
      instance,
      runnerName,
      labels,
      capacity,
      timeout,
      binaryName,
      version,
      binaryPath,
      ...(binaryPath === oldBinaryPath ? {} : { replacedBinaryPath: oldBinaryPath }),
      source,
      registerTimeoutSeconds,
      network,
      caCertificate,
    },
    problems: r.problems,
    warnings: r.warnings,
  };
}

export interface WslSecrets {
  privateKey: pulumi.Output<string | undefined>;
  registrationToken: pulumi.Output<string | undefined>;
}

export function readWslConfig(config = new pulumi.Config(PROJECT)): { settings: WslSettings; secrets: WslSecrets } {
  const raw = readRawConfig(WSL_KEYS, config);
  // Read raw: a PEM has newlines, which the config reader refuses in every other key.
  const { settings, problems, warnings } = validateWslConfig(raw, pulumi.runtime.getConfig(`${PROJECT}:caCertificate`));
  for (const w of warnings) pulumi.log.warn(w);
  // Read raw for validation only: Config.get would warn about reading a secret.
  const rawSecrets = readRawSecrets(["privateKey", "registrationToken"]);
  const hasToken = (rawSecrets.registrationToken ?? "").trim() !== "";
  if (settings.instance.kind === "config" && !hasToken) problems.push(`${PROJECT}:registrationToken: is required with gitea-homelab:instanceUrl (set it with --secret)`);
  problems.push(...secretProblems(rawSecrets));
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    settings,
    secrets: { privateKey: readSecret(config, "privateKey"), registrationToken: readSecret(config, "registrationToken") },
  };
}
