/**
 * The Gitea Actions runner, the pure half: its config.yaml, its system unit, and the scripts that
 * install it, register it with Gitea (the token on stdin), and remove it from the host and from
 * Gitea. One install path (`binaryPath`) is the source of every other path to the binary.
 */
import { createHash } from "crypto";
import { stringify } from "yaml";
import { Bash, installContent, MANAGED_HEADER, renderScript, sh, ShellVars, trimBash } from "../render/shell";
import { IniEntries, renderIni, unit, UnitValue } from "../render/unitFile";

export const PODMAN_SOCKET = "unix:///run/podman/podman.sock";

/**
 * Where job containers find the CA bundle (this machine's roots and Gitea's CA): the path Debian,
 * Ubuntu and Alpine images read, also named by the variables git, curl, OpenSSL and Node read.
 */
export const JOB_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** The host's own CA bundle, by distribution (the first that exists is used). */
export const SYSTEM_CA_BUNDLES = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

export interface RunnerSettings {
  /** Where the binary is installed; the unit runs exactly this. */
  binaryPath: string;
  /**
   * A binary an earlier install may have left, whose unit ran it (the runner's name before its
   * rename): removed when the unit being replaced, or removed, runs exactly it. Unset: nothing of
   * it is rendered.
   */
  replacedBinaryPath?: string;
  /** Download URL and its sha256, or a file already on the host (`sourcePath`). */
  source: { url: string; sha256: string } | { sourcePath: string };
  configDir: string;
  stateDir: string;
  name: string;
  labels: string[];
  capacity: number;
  timeout: string;
  instanceUrl: string;
  serviceName: string;
  /** The CA that signed Gitea's certificate (a server's own CA, or one given), PEM; unset: the system's roots suffice. */
  caCertificate?: string;
  /** The runner's container.network for job containers: "" is Podman's default network. */
  network: string;
}

export function runnerPaths(s: Pick<RunnerSettings, "configDir" | "stateDir">) {
  return {
    config: `${s.configDir}/config.yaml`,
    runnerFile: `${s.stateDir}/.runner`,
    fingerprint: `${s.stateDir}/.runner.fingerprint`,
    caFile: `${s.configDir}/gitea-ca.crt`,
    // This host's roots plus Gitea's CA: the runner and its jobs reach the internet too.
    caBundle: `${s.configDir}/ca-bundle.crt`,
  };
}

/** config.yaml, from the keys `gitea-runner generate-config` (act_runner's before the rename) writes. */
export function renderRunnerConfig(s: RunnerSettings): string {
  const doc = {
    log: { level: "info" },
    runner: {
      file: runnerPaths(s).runnerFile,
      capacity: s.capacity,
      timeout: s.timeout,
      insecure: false,
      // The runner takes a FetchTask that outlives this for "no work" (runner poll.go), while
      // Gitea may have handed it a job meanwhile: that job is lost, left "in progress". 5 s (the
      // generated default) is too short for a slow or busy host; Gitea answers at once when idle.
      fetch_timeout: "30s",
      fetch_interval: "2s",
      labels: s.labels,
      // Jobs trust Gitea's CA (and the usual roots): git, curl, OpenSSL and Node read these.
      ...(s.caCertificate ? { envs: { SSL_CERT_FILE: JOB_CA_BUNDLE, GIT_SSL_CAINFO: JOB_CA_BUNDLE, NODE_EXTRA_CA_CERTS: JOB_CA_BUNDLE } } : {}),
    },
    cache: { enabled: true },
    container: {
      // Podman's Docker-compatible API does not map the "bridge" network name: "" is its default.
      network: s.network,
      privileged: false,
      docker_host: PODMAN_SOCKET,
      force_pull: false,
      // The bundle replaces the job image's own, read-only; the runner mounts only what valid_volumes lists.
      ...(s.caCertificate ? { options: `-v ${runnerPaths(s).caBundle}:${JOB_CA_BUNDLE}:ro`, valid_volumes: [runnerPaths(s).caBundle] } : {}),
    },
    host: { workdir_parent: `${s.stateDir}/host-work` },
  };
  // lineWidth 0: never fold a long value across lines (one setting, one line).
  return `# ${MANAGED_HEADER}\n${stringify(doc, { lineWidth: 0 })}`;
}

export function renderRunnerUnit(s: RunnerSettings): string {
  const unitEntries: IniEntries = [
    ["Description", unit.literal("Gitea Actions runner (managed by gitea-homelab)")],
    ["Documentation", unit.literal("https://docs.gitea.com/usage/actions/act-runner")],
    ["Requires", unit.literal("podman.socket")],
    ["After", unit.literal("podman.socket network-online.target")],
    ["Wants", unit.literal("network-online.target")],
  ];
  return renderIni([
    { name: "Unit", entries: unitEntries },
    {
      name: "Service",
      entries: [
        ["ExecStart", unit.command([unit.execWord(s.binaryPath), unit.literal("daemon --config"), unit.execWord(runnerPaths(s).config)])],
        ["WorkingDirectory", unit.text(s.stateDir)],
        ["Environment", unit.environment("DOCKER_HOST", PODMAN_SOCKET)],
        // Go reads it: the daemon trusts Gitea's CA besides the usual roots.
        ...(s.caCertificate ? [["Environment", unit.environment("SSL_CERT_FILE", runnerPaths(s).caBundle)] as [string, UnitValue]] : []),
        ["Restart", unit.literal("always")],
        ["RestartSec", 10],
      ],
    },
    { name: "Install", entries: [["WantedBy", unit.literal("multi-user.target")]] },
  ]);
}

/** The unit's ExecStart= line, as renderRunnerUnit writes it for this binary. */
export function runnerExecStartLine(s: RunnerSettings): string {
  const line = renderRunnerUnit(s)
    .split("\n")
    .find((l) => l.startsWith("ExecStart="));
  if (line === undefined) throw new Error("the runner's unit has no ExecStart=");
  return line;
}

/**
 * Vars and bash for replacedBinaryPath: `check`, before the unit file is replaced or removed,
 * sets runs_replaced when that file runs exactly $replaced_binary (the ExecStart= line this
 * program wrote for it); `remove`, after, deletes that binary. All empty without a replaced
 * binary, so the scripts of such a stack are the same text as before replacedBinaryPath existed.
 */
function replacedBinary(s: RunnerSettings): { vars: ShellVars; check: Bash; remove: Bash } {
  if (s.replacedBinaryPath === undefined || s.replacedBinaryPath === s.binaryPath) return { vars: {}, check: sh``, remove: sh`` };
  const check = sh`
# The unit an earlier install wrote may run $replaced_binary (the runner's name before its
# rename): that binary goes once the unit runs $binary instead, or is removed.
runs_replaced=
if grep -qxF -- "$replaced_exec_start" "/etc/systemd/system/$service" 2>/dev/null; then runs_replaced=yes; fi
`;
  const remove = sh`
if [[ -n $runs_replaced && -f $replaced_binary ]]; then
  rm -f "$replaced_binary"
  echo "removed $replaced_binary, which $service ran before"
fi
`;
  return {
    vars: { replaced_binary: s.replacedBinaryPath, replaced_exec_start: runnerExecStartLine({ ...s, binaryPath: s.replacedBinaryPath }) },
    check: `${trimBash(check)}\n` as Bash,
    remove: `${trimBash(remove)}\n` as Bash,
  };
}

/** What a registration depends on: a change of any of these registers again. */
export function registrationFingerprint(s: Pick<RunnerSettings, "instanceUrl" | "name" | "labels">): string {
  return createHash("sha256").update(JSON.stringify([s.instanceUrl, s.name, s.labels])).digest("hex");
}

/** Installs the binary (checked against its sha256 when downloaded), podman.socket, config.yaml and the unit; restarts on change. */
/**
 * Bash printing what the binary at $binary says its version is (one line of plain characters),
 * "missing" when there is none. The install script prints it and the probe reads it, so that
 * the stack reports the version the host runs, not the one config names.
 */
export const PRINT_RUNNER_VERSION = sh`if [[ -x $binary ]]; then timeout 10 "$binary" --version 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9 ._+-' || true; else echo missing; fi`;

const VERSION_IN_TEXT = /\bv?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)/;

/**
 * The runner version the host runs: from the install command's output (the binary it last
 * installed), else from this run's probe, else "unknown". "act_runner version v0.2.13" → 0.2.13.
 */
export function reportedRunnerVersion(installStdout: string | undefined, probedVersion: string | undefined): string {
  const line = (installStdout ?? "").split("\n").find((l) => l.startsWith("runner binary version: "));
  for (const text of [line, probedVersion]) {
    const m = text === undefined ? null : VERSION_IN_TEXT.exec(text);
    if (m) return m[1];
  }
  return "unknown";
}

export function renderRunnerInstallScript(s: RunnerSettings): string {
  const replaced = replacedBinary(s);
  const source = "url" in s.source ? { url: s.source.url, sha256: s.source.sha256, source_path: "" } : { url: "", sha256: "", source_path: s.source.sourcePath };
  return renderScript(
    {
      purpose: "Gitea Actions runner: binary, podman.socket, config.yaml, its system unit.",
      vars: {
        binary: s.binaryPath,
        config_dir: s.configDir,
        state_dir: s.stateDir,
        runner_file: runnerPaths(s).runnerFile,
        service: s.serviceName,
        ca_file: runnerPaths(s).caFile,
        ca_bundle: runnerPaths(s).caBundle,
        ...(s.caCertificate ? { system_bundles: SYSTEM_CA_BUNDLES.join(" "), ca_certificate: s.caCertificate } : {}),
        ...source,
        ...replaced.vars,
      },
    },
    sh`
systemctl enable --now --quiet podman.socket
install -d -m 755 "$config_dir" "$(dirname "$binary")"
install -d -m 700 "$state_dir"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

if [[ -n $source_path ]]; then
  [[ -f $source_path ]] || die "runner binary $source_path does not exist on the host (gitea-homelab:runnerSourcePath)"
  cp "$source_path" "$tmp"
else
  curl --fail --silent --show-error --location --output "$tmp" "$url" || die "cannot download $url (gitea-homelab:runnerUrl); on a host without internet set gitea-homelab:runnerSourcePath"
  echo "$sha256  $tmp" | sha256sum --check --quiet - || die "$url does not match gitea-homelab:runnerSha256"
fi
install_file "$tmp" "$binary" 755 root root

${
  s.caCertificate
    ? sh`printf '%s' "$ca_certificate" >"$tmp"
install_file "$tmp" "$ca_file" 644 root root
# This host's roots, then Gitea's CA.
system_bundle=
for candidate in $system_bundles; do
  if [[ -s $candidate ]]; then system_bundle=$candidate; break; fi
done
[[ -n $system_bundle ]] || die "no CA bundle on this host ($system_bundles); install ca-certificates"
{ cat "$system_bundle"; printf '%s' "$ca_certificate"; } >"$tmp"
install_file "$tmp" "$ca_bundle" 644 root root`
    : sh`rm -f "$ca_file" "$ca_bundle"`
}

${installContent(renderRunnerConfig(s), sh`"$config_dir/config.yaml"`, sh`644`, sh`root`, sh`root`)}

${replaced.check}${installContent(renderRunnerUnit(s), sh`"/etc/systemd/system/$service"`, sh`644`, sh`root`, sh`root`)}
${replaced.remove}
echo "runner binary version: $(${PRINT_RUNNER_VERSION})"

systemctl daemon-reload
systemctl enable --quiet "$service"
# Before the first registration there is no .runner: the unit starts once register made it.
if systemctl is-active --quiet "$service" || [[ -f $runner_file ]]; then
  converge_service "$service" systemctl
else
  echo "$service installed; it starts after registration"
fi
`,
  );
}

/**
 * What the register command reads on stdin: the registration token on the first line and, on
 * the second, `user:password` of a Gitea admin (or nothing), which its delete uses to remove
 * the runner from Gitea. Neither value may hold a newline (the config reader refuses them).
 */
export function runnerCommandStdin(token: string, admin?: { username: string; password: string }): string {
  return `${token}\n${admin ? `${admin.username}:${admin.password}` : ""}\n`;
}

/**
 * remove_from_gitea CREDENTIALS: deletes the runner that $runner_file names from Gitea through
 * the admin API, CREDENTIALS (`user:password`) going to curl as a config on its stdin, never as
 * an argument. Only at the instance it was registered with (a changed instanceUrl may be another
 * Gitea, where that id is someone else's runner). Without credentials, at another instance, or
 * when Gitea does not answer: a warning, not a failure.
 */
const REMOVE_FROM_GITEA = sh`
remove_from_gitea() {
  local credentials=$1 id registered_at escaped status
  id=$(grep -o '"id": *[0-9]*' "$runner_file" 2>/dev/null | grep -o '[0-9]*$' || true)
  registered_at=$(grep -o '"address": *"[^"]*"' "$runner_file" 2>/dev/null | sed 's/^"address": *"//; s/"$//' || true)
  if [[ -z $credentials ]]; then
    echo "warning: runner $name stays listed in Gitea (offline): this stack has no admin credentials; delete it under Site Administration > Actions > Runners" >&2
  elif [[ -z $id ]]; then
    echo "warning: $runner_file names no runner id; delete runner $name in Gitea by hand" >&2
  elif [[ \${registered_at%/} != "\${instance%/}" ]]; then
    echo "warning: runner $name (id $id) was registered with \${registered_at:-another instance}, not $instance; delete it there under Site Administration > Actions > Runners" >&2
  else
    escaped=\${credentials//\\/\\\\}
    escaped=\${escaped//\"/\\\"}
    status=$(printf 'user = "%s"\n' "$escaped" | curl --silent --show-error --max-time 30 --config - \
      --request DELETE --output /dev/null --write-out '%{http_code}' "\${instance%/}/api/v1/admin/actions/runners/$id" || true)
    case $status in
      204 | 404) echo "runner $name (id $id) removed from $instance" ;;
      *) echo "warning: removing runner $name (id $id) from $instance answered '\${status:-no answer}'; delete it under Site Administration > Actions > Runners" >&2 ;;
    esac
  fi
}`;

/** register (Go) and curl trust Gitea's CA when the install command put one in the bundle. */
const TRUST_GITEA_CA = sh`if [[ -f $ca_bundle ]]; then export SSL_CERT_FILE=$ca_bundle CURL_CA_BUNDLE=$ca_bundle; fi`;

/**
 * Registers unless `.runner` exists with the same fingerprint. The token arrives on stdin and
 * goes to `register` on its stdin too: without --no-interactive the runner asks for every value
 * its flags leave out, so the token never appears in a process list. Bounded, since register
 * retries forever against an unreachable Gitea.
 */
export function renderRunnerRegisterScript(s: RunnerSettings, timeoutSeconds: number): string {
  const paths = runnerPaths(s);
  return renderScript(
    {
      purpose: "Register the Gitea Actions runner with its Gitea instance.",
      vars: {
        binary: s.binaryPath,
        config: paths.config,
        runner_file: paths.runnerFile,
        fingerprint_file: paths.fingerprint,
        fingerprint: registrationFingerprint(s),
        instance: s.instanceUrl,
        name: s.name,
        labels: s.labels.join(","),
        service: s.serviceName,
        timeout_seconds: timeoutSeconds,
        ca_bundle: paths.caBundle,
      },
    },
    sh`
${REMOVE_FROM_GITEA}
${TRUST_GITEA_CA}
if [[ -f $runner_file && $(cat "$fingerprint_file" 2>/dev/null) == "$fingerprint" ]]; then
  echo "runner $name already registered with $instance"
else
  IFS= read -r token || true
  IFS= read -r credentials || true
  [[ -n $token ]] || die "no registration token (gitea-homelab:registrationToken or the server stack's runnerRegistrationToken)"
  systemctl stop "$service" 2>/dev/null || true
  # Registered before (another name, labels or instance): that record goes, so Gitea does not
  # keep listing it offline. An existing .runner would also make register ask to overwrite it.
  if [[ -f $runner_file ]]; then remove_from_gitea "$credentials"; fi
  rm -f "$runner_file"
  cd "$(dirname "$runner_file")"
  # Its log never holds the token (the prompt does not echo it): its last lines explain a failure.
  if ! output=$(printf '%s\n' "$token" | timeout "$timeout_seconds" "$binary" register --config "$config" \
    --instance "$instance" --name "$name" --labels "$labels" 2>&1); then
    die "registering with $instance failed or timed out after $timeout_seconds seconds; is Gitea reachable from this host at that URL (gitea-homelab:instanceUrl), and is its certificate trusted (a private CA: gitea-homelab:caCertificate)? $(tail -n 3 <<<"$output")"
  fi
  [[ -f $runner_file ]] || die "register wrote no $runner_file: Gitea refused the registration (check the token: gitea-homelab:registrationToken or the server stack's runnerRegistrationToken). $(tail -n 3 <<<"$output")"
  echo "$fingerprint" >"$fingerprint_file"
  echo "runner $name registered with $instance"
fi
systemctl is-active --quiet "$service" || systemctl start "$service"
systemctl is-active --quiet "$service" || die "$service is not running; see journalctl -u $service"
`,
  );
}

/**
 * The register command's delete: stops the runner and removes its record from Gitea through the
 * admin API with the credentials on stdin's second line (given to curl as a config on its stdin,
 * never as an argument). Gitea gone or no credentials: a warning, not a failed destroy.
 */
export function renderRunnerUnregisterScript(s: RunnerSettings): string {
  const paths = runnerPaths(s);
  return renderScript(
    {
      purpose: "Remove the Gitea Actions runner's registration, from Gitea too.",
      vars: { runner_file: paths.runnerFile, fingerprint_file: paths.fingerprint, instance: s.instanceUrl, name: s.name, service: s.serviceName, ca_bundle: paths.caBundle },
    },
    sh`
${REMOVE_FROM_GITEA}
${TRUST_GITEA_CA}
systemctl stop "$service" 2>/dev/null || true
if [[ -f $runner_file ]]; then
  IFS= read -r _ || true
  IFS= read -r credentials || true
  remove_from_gitea "$credentials"
fi
rm -f "$runner_file" "$fingerprint_file"
`,
  );
}

export function renderRunnerRemoveScript(s: RunnerSettings): string {
  // An install that never ran since replacedBinaryPath appeared leaves a unit running that binary.
  const replaced = replacedBinary(s);
  return renderScript(
    {
      purpose: "Remove the Gitea Actions runner: unit, config, registration, binary.",
      vars: { binary: s.binaryPath, service: s.serviceName, config_dir: s.configDir, state_dir: s.stateDir, ...replaced.vars },
    },
    sh`
systemctl disable --now --quiet "$service" 2>/dev/null || true
${replaced.check}rm -f "/etc/systemd/system/$service"
${replaced.remove}systemctl daemon-reload
rm -rf "$config_dir" "$state_dir"
rm -f "$binary"
echo "runner removed from this host"
`,
  );
}
