/**
 * GiteaKeys: the keys Gitea encrypts with, made on the host once and kept with the data (see
 * render.ts). Kept on destroy like the volumes, removed with them when the stack sets destroyData.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { keysCheck } from "./drift";
import { KEYS_FILE, renderKeysDeleteScript, renderKeysScript } from "./render";

export interface GiteaKeysArgs {
  host: Host;
  user: pulumi.Input<string>;
  /** The volume holding Gitea's database: keys are never made anew beside an existing one. */
  dataVolume: pulumi.Input<string>;
  /** The service's environment file (relative to the home), where earlier versions kept the keys. */
  legacyEnvFile: pulumi.Input<string>;
  destroyData: boolean;
}

export class GiteaKeys extends pulumi.ComponentResource {
  /** The keys file, relative to the rootless user's home. */
  readonly keysFile: pulumi.Output<string>;
  readonly ready: command.remote.Command;

  constructor(name: string, args: GiteaKeysArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:GiteaKeys", name, {}, opts);
    const user = pulumi.output(args.user);
    this.keysFile = pulumi.output(KEYS_FILE);
    this.ready = args.host.converge(
      `${name}-file`,
      {
        create: pulumi.all([user, args.dataVolume, args.legacyEnvFile]).apply(([u, dataVolume, legacyEnvFile]) => renderKeysScript({ user: u, dataVolume, legacyEnvFile })),
        delete: user.apply(renderKeysDeleteScript),
        check: user.apply(keysCheck),
      },
      { parent: this, dependsOn: opts?.dependsOn, retainOnDelete: !args.destroyData },
    );
    this.registerOutputs({ keysFile: this.keysFile });
  }
}
