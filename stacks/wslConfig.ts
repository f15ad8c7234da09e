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

export const WSL_DEFAULTS = {
  serverStack: "organization/gitea-homelab/server",
  runnerName: "wsl-runner",
  runnerLabels: "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
  runnerCapacity: 1,
  runnerTimeout: "3h",
  runnerBinaryName: "act_runner",
  runnerVersion: "0.2.13",
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

export function defaultRunnerUrl(binaryName: string, version: string): string {
  return `https://dl.gitea.com/${binaryName}/${version}/${binaryName}-${version}-linux-amd64`;
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
  source: { url: string; sha256: string } | { sourcePath: string };
  registerTimeoutSeconds: number;
  /** act_runner's container.network: "" (Podman's default), host, or a network's name. */
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
  const version = r.matching("runnerVersion", r.string("runnerVersion", d.runnerVersion), VERSION, "a release version like 0.2.13 or v1.0.0");
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

  return {
    settings: { connection, instance, runnerName, labels, capacity, timeout, binaryName, version, binaryPath: `${installDir.replace(/\/$/, "")}/${binaryName}`, source, registerTimeoutSeconds, network, caCertificate },
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
