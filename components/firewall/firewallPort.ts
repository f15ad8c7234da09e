/**
 * FirewallPort: one port open in firewalld, permanently and at runtime, in the configured zone
 * or the host's default zone (render.ts), checked for drift (drift.ts). Destroy (and a change of
 * port) closes it again. On a host whose decided firewall is none it does nothing, and says so.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { portCheck } from "./drift";
import { FirewallPortSpec, renderClosePortScript, renderOpenPortScript, renderPortSkippedScript } from "./render";

export interface FirewallPortArgs {
  host: Host;
  port: pulumi.Input<number>;
  protocol?: pulumi.Input<"tcp" | "udp">;
  /** firewalld zone; the host's default zone when unset. */
  zone?: pulumi.Input<string | undefined>;
}

export class FirewallPort extends pulumi.ComponentResource {
  readonly opened: command.remote.Command;

  constructor(name: string, args: FirewallPortArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:FirewallPort", name, {}, opts);
    const spec = pulumi.all([args.port, args.protocol ?? "tcp", args.zone]).apply(([port, protocol, zone]): FirewallPortSpec => ({ port, protocol, zone: zone || undefined }));
    const platform = args.host.platform;
    this.opened = args.host.converge(
      `${name}-port`,
      {
        create: pulumi.all([spec, platform]).apply(([s, p]) => (p.firewall === "firewalld" ? renderOpenPortScript(s) : renderPortSkippedScript(s, p))),
        delete: pulumi.all([spec, platform]).apply(([s, p]) => (p.firewall === "firewalld" ? renderClosePortScript(s) : renderPortSkippedScript(s, p))),
        check: spec.apply(portCheck),
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
