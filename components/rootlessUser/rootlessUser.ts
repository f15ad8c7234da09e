/** RootlessUser: the account Gitea runs as (see render.ts), checked for drift (drift.ts). */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { rootlessUserCheck } from "./drift";
import { renderRootlessUserDeleteScript, renderRootlessUserScript, StorageDriver } from "./render";

export interface RootlessUserArgs {
  host: Host;
  username: pulumi.Input<string>;
  /** Delete the account and its home on destroy (default: keep them, only disable linger). */
  removeOnDestroy?: pulumi.Input<boolean>;
  /** How long to wait for the user's systemd manager after enabling linger. */
  readyTimeoutSeconds?: pulumi.Input<number>;
  /** Podman storage driver; "auto": overlay, vfs inside a container, btrfs on btrfs. */
  storageDriver?: pulumi.Input<StorageDriver>;
}

export class RootlessUser extends pulumi.ComponentResource {
  readonly username: pulumi.Output<string>;
  readonly ready: command.remote.Command;

  constructor(name: string, args: RootlessUserArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:RootlessUser", name, {}, opts);
    this.username = pulumi.output(args.username);
    const timeout = pulumi.output(args.readyTimeoutSeconds ?? 120);
    const platform = args.host.platform;
    this.ready = args.host.converge(
      `${name}-account`,
      {
        create: pulumi.all([platform, this.username, timeout, args.storageDriver ?? "auto"]).apply(([p, u, t, d]) => renderRootlessUserScript(p, u, t, d)),
        delete: pulumi.all([platform, this.username, pulumi.output(args.removeOnDestroy ?? false)]).apply(([p, u, r]) => renderRootlessUserDeleteScript(p, u, r)),
        check: this.username.apply(rootlessUserCheck),
        // Another user is another account: replace, so the old one's linger is disabled.
        triggers: [this.username],
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.registerOutputs({ username: this.username });
  }
}
