/**
 * FirewallPort: one port open in firewalld, permanently and at runtime, in the configured zone
 * or the host's default zone. Destroy (and a change of port) closes it again.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { firewalldRunningCheck, Host } from "./host";
import { renderScript, sh } from "./render/shell";

export interface FirewallPortArgs {
  host: Host;
  port: pulumi.Input<number>;
  protocol?: pulumi.Input<"tcp" | "udp">;
  /** firewalld zone; the host's default zone when unset. */
  zone?: pulumi.Input<string | undefined>;
}

export interface FirewallPortSpec {
  port: number;
  protocol: "tcp" | "udp";
  zone?: string;
}

function zoneLine(): string {
  return sh`zone=\${zone:-$(firewall-cmd --get-default-zone)}`;
}

export function renderOpenPortScript(spec: FirewallPortSpec): string {
  return renderScript(
    { purpose: `Open ${spec.port}/${spec.protocol} in firewalld.`, vars: { port: `${spec.port}/${spec.protocol}`, zone: spec.zone ?? "" } },
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
    { purpose: `Close ${spec.port}/${spec.protocol} in firewalld.`, vars: { port: `${spec.port}/${spec.protocol}`, zone: spec.zone ?? "" } },
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

export class FirewallPort extends pulumi.ComponentResource {
  readonly opened: command.remote.Command;

  constructor(name: string, args: FirewallPortArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:FirewallPort", name, {}, opts);
    const spec = pulumi.all([args.port, args.protocol ?? "tcp", args.zone]).apply(([port, protocol, zone]): FirewallPortSpec => ({ port, protocol, zone: zone || undefined }));
    this.opened = args.host.run(
      `${name}-port`,
      {
        create: spec.apply(renderOpenPortScript),
        delete: spec.apply(renderClosePortScript),
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
