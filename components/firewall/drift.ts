/**
 * A firewalld port, its probe and comparison. The probe asks firewalld over D-Bus with busctl
 * (a C program): firewall-cmd starts Python each time, seconds per call on a small host.
 */
import { HostCheck } from "../host/checkedCommand";
import { Platform } from "../host/platform";
import { Facts, ProbeBody } from "../host/probeSession";
import { sh } from "../render/shell";
import { FIREWALLD_FUNCTIONS, FirewallPortSpec } from "./render";

/**
 * Read-only: is the port open at runtime (firewalld over D-Bus; busctl runs with
 * --auto-start=no, since asking a stopped firewalld by name would start it) and in the
 * permanent config, the zone's XML file? Each zone's listing is asked for once per session.
 */
export function renderPortProbe(spec: FirewallPortSpec): ProbeBody {
  return {
    vars: { port: String(spec.port), protocol: spec.protocol, zone: spec.zone ?? "" },
    functions: FIREWALLD_FUNCTIONS,
    body: sh`
if ! command -v firewall-cmd >/dev/null; then
  echo firewalld=missing
  return 0
fi
[[ -n $zone ]] || zone=$(cached firewalld-default-zone fw_default_zone) || zone=
# Answers look like: aas 2 2 "4111" "tcp" 2 "3333" "tcp"
if ! runtime=$(cached "firewalld-runtime-$zone" fw_call /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone getPorts s "$zone"); then
  if fw_running; then return 1; fi
  echo firewalld=stopped
  return 0
fi
echo firewalld=running
echo "zone=$zone"
# The permanent config is the zone's file: firewalld's own copy when changed, else the shipped one.
permanent=
for file in "/etc/firewalld/zones/$zone.xml" "/usr/lib/firewalld/zones/$zone.xml"; do
  if [[ -r $file ]]; then
    IFS= read -r -d '' permanent <"$file" || true
    break
  fi
done
if [[ $runtime == *"\"$port\" \"$protocol\""* ]]; then echo runtime=open; else echo runtime=closed; fi
if [[ $permanent == *"<port port=\"$port\" protocol=\"$protocol\"/>"* ]]; then echo permanent=open; else echo permanent=closed; fi
`,
  };
}

/** How the probed port differs from open-at-runtime-and-permanently; empty when it does not. */
export function portDrift(spec: FirewallPortSpec, facts: Facts | undefined): string[] {
  const what = `firewall ${spec.port}/${spec.protocol}`;
  if (facts === undefined) return [`${what}: state unknown (probe output unreadable)`];
  if (facts.firewalld === "missing") return [`${what}: firewalld is not installed, expected open`];
  if (facts.firewalld === "stopped") return [`${what}: firewalld is not running, expected open`];
  const runtime = facts.runtime;
  const permanent = facts.permanent;
  if (facts.firewalld !== "running" || !["open", "closed"].includes(runtime) || !["open", "closed"].includes(permanent)) {
    return [`${what}: state unknown (probe output unreadable)`];
  }
  const zone = facts.zone ? ` in zone ${facts.zone}` : "";
  if (runtime === "closed" && permanent === "closed") return [`${what}: closed${zone}, expected open`];
  if (runtime === "closed") return [`${what}: closed at runtime${zone} (open in the permanent config), expected open`];
  if (permanent === "closed") return [`${what}: open at runtime but not in the permanent config${zone} (closes at reboot), expected open`];
  return [];
}

/** On a host whose decided firewall is none (Alpine under auto), the port is left alone. */
export function portCheck(spec: FirewallPortSpec): HostCheck {
  return { probe: renderPortProbe(spec), compare: (facts, platform: Platform) => (platform.firewall === "firewalld" ? portDrift(spec, facts) : []) };
}
