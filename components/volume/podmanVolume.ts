/**
 * PodmanVolume: a named volume in a rootless user's storage. Kept on destroy (retainOnDelete)
 * unless the stack asks to destroy data, since it holds the user's repositories.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { volumeCheck } from "./drift";
import { renderVolumeCreateScript, renderVolumeDeleteScript } from "./render";

export interface PodmanVolumeArgs {
  host: Host;
  owner: pulumi.Input<string>;
  volumeName: pulumi.Input<string>;
  /** Remove the volume and its data on destroy; otherwise Pulumi forgets it and it stays. */
  destroyData: boolean;
}

export class PodmanVolume extends pulumi.ComponentResource {
  readonly volumeName: pulumi.Output<string>;
  readonly created: command.remote.Command;

  constructor(name: string, args: PodmanVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:PodmanVolume", name, {}, opts);
    this.volumeName = pulumi.output(args.volumeName);
    const both = pulumi.all([args.owner, args.volumeName]);
    this.created = args.host.converge(
      `${name}-volume`,
      {
        create: both.apply(([o, v]) => renderVolumeCreateScript(o, v)),
        delete: both.apply(([o, v]) => renderVolumeDeleteScript(o, v)),
        check: both.apply(([o, v]) => volumeCheck(o, v)),
        triggers: [args.owner, args.volumeName],
      },
      { parent: this, dependsOn: opts?.dependsOn, retainOnDelete: !args.destroyData },
    );
    this.registerOutputs({ volumeName: this.volumeName });
  }
}
