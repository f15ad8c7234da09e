/**
 * The runner, its probes and comparisons: the install (binary, config.yaml, unit,
 * podman.socket, the service's state) and the registration (.runner and its fingerprint).
 */
import { HostCheck } from "../host/checkedCommand";
import { Facts, ProbeBody } from "../host/probeSession";
import { fileDigest, sh } from "../render/shell";
import { PRINT_RUNNER_VERSION, registrationFingerprint, renderRunnerConfig, renderRunnerUnit, RunnerSettings, runnerPaths } from "./render";

/** Read-only: binary, config, unit, podman.socket and the service's state. */
export function renderRunnerInstallProbe(s: RunnerSettings): ProbeBody {
  const paths = runnerPaths(s);
  return {
    vars: {
      binary: s.binaryPath,
      source_path: "sourcePath" in s.source ? s.source.sourcePath : "",
      config: paths.config,
      unit: `/etc/systemd/system/${s.serviceName}`,
      service: s.serviceName,
      runner_file: paths.runnerFile,
      ca_file: paths.caFile,
      ca_bundle: paths.caBundle,
    },
    body: sh`
echo "binary=$(file_digest "$binary")"
[[ -z $source_path ]] || echo "source=$(file_digest "$source_path")"
echo "config=$(file_digest "$config")"
echo "unit=$(file_digest "$unit")"
echo "active=$(systemctl is-active "$service" 2>/dev/null || true)"
echo "enabled=$(systemctl is-enabled "$service" 2>/dev/null || true)"
echo "podman_socket=$(systemctl is-enabled podman.socket 2>/dev/null || true)/$(systemctl is-active podman.socket 2>/dev/null || true)"
if [[ -f $runner_file ]]; then echo runner_file=present; else echo runner_file=missing; fi
echo "version=$(${PRINT_RUNNER_VERSION})"
echo "ca_file=$(file_digest "$ca_file")"
if [[ -s $ca_bundle ]]; then echo ca_bundle=present; else echo ca_bundle=missing; fi
`,
  };
}

/** Read-only: the registration file and the fingerprint of what it was made for. */
export function renderRunnerRegistrationProbe(s: RunnerSettings): ProbeBody {
  const paths = runnerPaths(s);
  return {
    vars: { runner_file: paths.runnerFile, fingerprint_file: paths.fingerprint },
    body: sh`
if [[ -f $runner_file ]]; then echo runner_file=present; else echo runner_file=missing; fi
echo "fingerprint=$(cat "$fingerprint_file" 2>/dev/null || echo missing)"
`,
  };
}

function unreadable(facts: Facts | undefined, keys: string[]): boolean {
  return facts === undefined || keys.some((k) => facts[k] === undefined);
}

/** Drift the install command repairs: binary, config.yaml, unit, podman.socket, service state. */
export function runnerInstallDrift(s: RunnerSettings, facts: Facts | undefined): string[] {
  const what = `runner ${s.name}`;
  if (unreadable(facts, ["binary", "config", "unit", "active", "enabled", "podman_socket", "runner_file"])) return [`${what}: state unknown (probe output unreadable)`];
  const f = facts!;
  const drift: string[] = [];
  const expectedBinary = "url" in s.source ? s.source.sha256.toLowerCase() : f.source;
  if (f.binary === "missing") drift.push(`${what}: ${s.binaryPath} missing`);
  else if ("sourcePath" in s.source && f.source === "missing") drift.push(`${what}: ${s.source.sourcePath} missing (gitea-homelab:runnerSourcePath)`);
  else if (f.binary !== expectedBinary) drift.push(`${what}: ${s.binaryPath} differs from the configured binary`);
  const files: Array<[string, string, string]> = [
    [runnerPaths(s).config, f.config, fileDigest(renderRunnerConfig(s))],
    [`/etc/systemd/system/${s.serviceName}`, f.unit, fileDigest(renderRunnerUnit(s))],
  ];
  for (const [path, actual, expected] of files) {
    if (actual === "missing") drift.push(`${what}: ${path} deleted`);
    else if (actual !== expected) drift.push(`${what}: ${path} edited (differs from the rendered one)`);
  }
  if (s.caCertificate !== undefined) {
    const ca = runnerPaths(s).caFile;
    if (f.ca_file === "missing" || f.ca_bundle === "missing") drift.push(`${what}: Gitea's CA ${f.ca_file === "missing" ? ca : runnerPaths(s).caBundle} deleted`);
    else if (f.ca_file !== fileDigest(s.caCertificate)) drift.push(`${what}: ${ca} differs from Gitea's CA`);
  }
  if (f.podman_socket !== "enabled/active") drift.push(`${what}: podman.socket ${f.podman_socket}, expected enabled/active`);
  if (f.enabled !== "enabled") drift.push(`${what}: ${s.serviceName} ${f.enabled || "not installed"} at boot, expected enabled`);
  // Without a registration the service is not started; the register command's drift says so.
  if (f.runner_file === "present" && f.active !== "active") drift.push(`${what}: ${s.serviceName} ${f.active || "not loaded"}, expected active`);
  return drift;
}

/** Drift the register command repairs: .runner gone, or made for another instance, name or labels. */
export function runnerRegistrationDrift(s: RunnerSettings, facts: Facts | undefined): string[] {
  const what = `runner ${s.name}`;
  if (unreadable(facts, ["runner_file", "fingerprint"])) return [`${what}: registration state unknown (probe output unreadable)`];
  const f = facts!;
  if (f.runner_file !== "present") return [`${what}: ${runnerPaths(s).runnerFile} missing, expected registered`];
  if (f.fingerprint !== registrationFingerprint(s)) return [`${what}: registered for another instance, name or labels`];
  return [];
}

export function runnerInstallCheck(s: RunnerSettings): HostCheck {
  return { probe: renderRunnerInstallProbe(s), compare: (facts) => runnerInstallDrift(s, facts) };
}

export function runnerRegistrationCheck(s: RunnerSettings): HostCheck {
  return { probe: renderRunnerRegistrationProbe(s), compare: (facts) => runnerRegistrationDrift(s, facts) };
}
