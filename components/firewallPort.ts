/**
 * FirewallPort: one port open in firewalld, permanently and at runtime, in the configured zone
 * or the host's default zone. Destroy (and a change of port) closes it again.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { firewalldRunningCheck, Host } from "./host";
import { Platform, usesFirewalld } from "./platform";
import { Facts, ProbeSection } from "./render/probe";
import { Bash, renderScript, sh } from "./render/shell";

export interface FirewallPortArgs {
  host: Host;
  port: pulumi.Input<number>;
  protocol?: pulumi.Input<"tcp" | "udp">;
  /** firewalld zone; the host's default zone when unset. */
  zone?: pulumi.Input<string | undefined>;
  /** "auto": leave the firewall alone on Alpine, which ships no firewalld (default "firewalld"). */
  firewall?: pulumi.Input<"auto" | "firewalld">;
}

/** What a port does on a host without firewalld under `firewall: auto`: nothing, and says so. */
export function renderPortSkippedScript(spec: FirewallPortSpec, platform: Platform): string {
  return renderScript(
    { purpose: "Leave a port alone: this OS ships no firewalld (gitea-homelab:firewall auto).", vars: { port: `${spec.port}/${spec.protocol}`, os: platform.osId } },
    sh`echo "no firewalld on this $os host (gitea-homelab:firewall auto): $port not managed; open it in your own firewall"`,
  );
}

export interface FirewallPortSpec {
  port: number;
  protocol: "tcp" | "udp";
  zone?: string;
}

function zoneLine(): Bash {
  return sh`zone=\${zone:-$(firewall-cmd --get-default-zone)}`;
}

export function renderOpenPortScript(spec: FirewallPortSpec): string {
  return renderScript(
    { purpose: "Open a port in firewalld, permanently and at runtime.", vars: { port: `${spec.port}/${spec.protocol}`, zone: spec.zone ?? "" } },
    sh`
${firewalldRunningCheck()}
${zoneLine()}
firewall-cmd --quiet --permanent --zone="$zone" --add-port="$port"
firewall-cmd --quiet --zone="$zone" --add-port="$port"
echo "firewalld zone $zone: $port open"
`,
  );
}

export function renderClosePortScript(spec: FirewallPortSpec): string {
  return renderScript(
    { purpose: "Close a port in firewalld, permanently and at runtime.", vars: { port: `${spec.port}/${spec.protocol}`, zone: spec.zone ?? "" } },
    sh`
if ! command -v firewall-cmd >/dev/null; then
  echo "firewalld is not installed; nothing to close"
  exit 0
fi
if ! firewall-cmd --state >/dev/null 2>&1; then
  # Stopped firewalld: still take the port out of the permanent config.
  zone=\${zone:-$(firewall-offline-cmd --get-default-zone)}
  firewall-offline-cmd --zone="$zone" --remove-port="$port" >/dev/null
  echo "firewalld not running; removed $port from zone $zone's permanent config"
  exit 0
fi
${zoneLine()}
firewall-cmd --quiet --permanent --zone="$zone" --remove-port="$port"
firewall-cmd --quiet --zone="$zone" --remove-port="$port"
echo "firewalld zone $zone: $port closed"
`,
  );
}

/** Read-only: is the port open at runtime and in the permanent config of its zone? */
export function renderPortProbe(key: string, spec: FirewallPortSpec): ProbeSection {
  return {
    key,
    vars: { port: `${spec.port}/${spec.protocol}`, zone: spec.zone ?? "" },
    // firewall-cmd starts Python each time: the session runs each listing once for all ports.
    body: sh`
if ! command -v firewall-cmd >/dev/null; then
  echo firewalld=missing
  return 0
fi
zone_args=()
[[ -z $zone ]] || zone_args=(--zone="$zone")
status=0
runtime=$(cached "firewalld-runtime-$zone" firewall-cmd "\${zone_args[@]}" --list-ports) || status=$?
if ((status == 252)); then
  echo firewalld=stopped
  return 0
fi
((status == 0)) || return 1
echo firewalld=running
echo "zone=$zone"
permanent=$(cached "firewalld-permanent-$zone" firewall-cmd --permanent "\${zone_args[@]}" --list-ports) || return 1
if [[ " $runtime " == *" $port "* ]]; then echo runtime=open; else echo runtime=closed; fi
if [[ " $permanent " == *" $port "* ]]; then echo permanent=open; else echo permanent=closed; fi
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

export class FirewallPort extends pulumi.ComponentResource {
  readonly opened: command.remote.Command;

  constructor(name: string, args: FirewallPortArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:FirewallPort", name, {}, opts);
    const spec = pulumi.all([args.port, args.protocol ?? "tcp", args.zone]).apply(([port, protocol, zone]): FirewallPortSpec => ({ port, protocol, zone: zone || undefined }));
    const facts = args.host.probe(spec.apply((s) => renderPortProbe(`firewall:${name}`, s)));
    const managed = pulumi.all([args.firewall ?? "firewalld", args.host.platform]).apply(([firewall, platform]) => usesFirewalld(firewall, platform));
    this.opened = args.host.run(
      `${name}-port`,
      {
        create: pulumi.all([spec, managed, args.host.platform]).apply(([s, m, p]) => (m ? renderOpenPortScript(s) : renderPortSkippedScript(s, p))),
        delete: pulumi.all([spec, managed, args.host.platform]).apply(([s, m, p]) => (m ? renderClosePortScript(s) : renderPortSkippedScript(s, p))),
        drift: pulumi.all([spec, facts, managed]).apply(([s, f, m]) => (m ? portDrift(s, f) : [])),
        // A new port or zone replaces: the old one's delete closes it.
        triggers: [spec.apply((s) => `${s.port}/${s.protocol}@${s.zone ?? "default"}`)],
      },
      // Close the old port before opening the new: when both resolve to the same zone and
      // port, closing last would undo the opening.
      { parent: this, dependsOn: opts?.dependsOn, deleteBeforeReplace: true },
    );
    this.registerOutputs({});
  }
}
