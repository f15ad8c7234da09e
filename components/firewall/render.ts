/**
 * A firewalld port, the pure half: open permanently and at runtime in the configured zone or the
 * host's default zone, closed again on destroy. Scripts talk to firewalld's D-Bus API through
 * busctl: firewall-cmd starts Python for every call, seconds each on a small host.
 */
import { Platform } from "../host/platform";
import { Bash, renderScript, sh, shq } from "../render/shell";

/**
 * Bash functions for firewalld's D-Bus API. busctl runs with --auto-start=no: asking a stopped
 * firewalld by its bus name would start it (D-Bus activation).
 */
export const FIREWALLD_FUNCTIONS = sh`
fw_call() { busctl --auto-start=no call org.fedoraproject.FirewallD1 "$@"; }
fw_running() {
  [[ $(busctl --auto-start=no get-property org.fedoraproject.FirewallD1 /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1 state 2>/dev/null) == 's "RUNNING"' ]]
}
# busctl prints a one-value answer as TYPE "VALUE"; this prints VALUE.
fw_value() {
  local answer=$1
  answer=\${answer#* \"}
  printf '%s\n' "\${answer%\"}"
}
fw_default_zone() { fw_value "$(fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1 getDefaultZone)"; }
# The object of a zone's permanent config. Usage: fw_config_zone ZONE
fw_config_zone() { fw_value "$(fw_call /org/fedoraproject/FirewallD1/config org.fedoraproject.FirewallD1.config getZoneByName s "$1")"; }
`.trim() as Bash;

export interface FirewallPortSpec {
  port: number;
  protocol: "tcp" | "udp";
  zone?: string;
}

/** What a port does on a host without firewalld under `firewall: auto`: nothing, and says so. */
export function renderPortSkippedScript(spec: FirewallPortSpec, platform: Platform): string {
  return renderScript(
    { purpose: "Leave a port alone: this OS ships no firewalld (gitea-homelab:firewall auto).", vars: { port: `${spec.port}/${spec.protocol}`, os: platform.osId } },
    sh`echo "no firewalld on this $os host (gitea-homelab:firewall auto): $port not managed; open it in your own firewall"`,
  );
}

export function renderOpenPortScript(spec: FirewallPortSpec): string {
  return renderScript(
    { purpose: "Open a port in firewalld, permanently and at runtime.", vars: { port: String(spec.port), protocol: spec.protocol, zone: spec.zone ?? "" } },
    sh`
${FIREWALLD_FUNCTIONS}
${firewalldRunningCheck()}
zone=\${zone:-$(fw_default_zone)}
config_zone=$(fw_config_zone "$zone")
if [[ $(fw_call "$config_zone" org.fedoraproject.FirewallD1.config.zone queryPort ss "$port" "$protocol") != "b true" ]]; then
  fw_call "$config_zone" org.fedoraproject.FirewallD1.config.zone addPort ss "$port" "$protocol"
fi
if [[ $(fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone queryPort sss "$zone" "$port" "$protocol") != "b true" ]]; then
  fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone addPort sssi "$zone" "$port" "$protocol" 0 >/dev/null
fi
echo "firewalld zone $zone: $port/$protocol open"
`,
  );
}

export function renderClosePortScript(spec: FirewallPortSpec): string {
  return renderScript(
    { purpose: "Close a port in firewalld, permanently and at runtime.", vars: { port: String(spec.port), protocol: spec.protocol, zone: spec.zone ?? "" } },
    sh`
${FIREWALLD_FUNCTIONS}
if ! command -v firewall-cmd >/dev/null; then
  echo "firewalld is not installed; nothing to close"
  exit 0
fi
if ! fw_running; then
  # Stopped firewalld: still take the port out of the permanent config.
  zone=\${zone:-$(firewall-offline-cmd --get-default-zone)}
  firewall-offline-cmd --zone="$zone" --remove-port="$port/$protocol" >/dev/null
  echo "firewalld not running; removed $port/$protocol from zone $zone's permanent config"
  exit 0
fi
zone=\${zone:-$(fw_default_zone)}
config_zone=$(fw_config_zone "$zone")
if [[ $(fw_call "$config_zone" org.fedoraproject.FirewallD1.config.zone queryPort ss "$port" "$protocol") == "b true" ]]; then
  fw_call "$config_zone" org.fedoraproject.FirewallD1.config.zone removePort ss "$port" "$protocol"
fi
if [[ $(fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone queryPort sss "$zone" "$port" "$protocol") == "b true" ]]; then
  fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone removePort sss "$zone" "$port" "$protocol" >/dev/null
fi
echo "firewalld zone $zone: $port/$protocol closed"
`,
  );
}

/**
 * Bash that fails clearly unless firewalld runs (needs FIREWALLD_FUNCTIONS and wait_for); the
 * preflight and the open script use it. A firewalld still starting, or not yet started while
 * the host boots (an up right after a reboot), is waited for.
 */
export function firewalldRunningCheck(): Bash {
  const advice = "start it with 'systemctl enable --now firewalld' or set gitea-homelab:firewall to none";
  return sh`if ! fw_running && [[ $(systemctl show firewalld.service --property=ActiveState --value 2>/dev/null) == @(activating|active) ||
  $(systemctl is-system-running 2>/dev/null) == starting ]]; then
  wait_for 120 "firewalld to finish starting" fw_running || true
fi
fw_running || die "firewalld is not running: "${shq(advice)}`;
}
