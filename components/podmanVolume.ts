/**
 * PodmanVolume: a named volume in a rootless user's storage. Kept on destroy (retainOnDelete)
 * unless the stack asks to destroy data, since it holds the user's repositories.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "./host";
import { Facts, podmanPresence, renderPodmanExistsProbe } from "./render/probe";
import { renderScript, sh } from "./render/shell";

export interface PodmanVolumeArgs {
  host: Host;
  owner: pulumi.Input<string>;
  volumeName: pulumi.Input<string>;
  /** Remove the volume and its data on destroy; otherwise Pulumi forgets it and it stays. */
  destroyData: boolean;
}

export function renderVolumeCreateScript(owner: string, volume: string): string {
  return renderScript(
    { purpose: "Podman volume of the rootless user.", vars: { owner, volume } },
    sh`
if as_user "$owner" podman volume exists "$volume"; then
  echo "volume $volume exists"
else
  as_user "$owner" podman volume create "$volume" >/dev/null
  echo "created volume $volume"
fi
`,
  );
}

export function renderVolumeDeleteScript(owner: string, volume: string): string {
  return renderScript(
    { purpose: "Remove a Podman volume of the rootless user and its data (destroyData is true).", vars: { owner, volume } },
    sh`
if ! id -u "$owner" >/dev/null 2>&1; then
  echo "user $owner is gone, and its volumes with it"
  exit 0
fi
if as_user "$owner" podman volume exists "$volume"; then
  as_user "$owner" podman volume rm --force "$volume" >/dev/null
  echo "removed volume $volume"
fi
`,
  );
}

/** A missing volume is said loudly: what was in it is gone, and converging makes an empty one. */
export function volumeDrift(volume: string, facts: Facts | undefined): string[] {
  const presence = podmanPresence(facts, "volume");
  if (presence === "present") return [];
  if (presence === "missing") {
    return [`volume ${volume}: MISSING; the data it held may be lost; pulumi up creates it again, EMPTY (restore a backup into it)`];
  }
  return [`volume ${volume}: state unknown (${presence.unknown})`];
}

export class PodmanVolume extends pulumi.ComponentResource {
  readonly volumeName: pulumi.Output<string>;
  readonly created: command.remote.Command;

  constructor(name: string, args: PodmanVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:PodmanVolume", name, {}, opts);
    this.volumeName = pulumi.output(args.volumeName);
    const both = pulumi.all([args.owner, args.volumeName]);
    this.created = args.host.run(
      `${name}-volume`,
      {
        create: both.apply(([o, v]) => renderVolumeCreateScript(o, v)),
        delete: both.apply(([o, v]) => renderVolumeDeleteScript(o, v)),
        drift: pulumi.all([this.volumeName, args.host.probe(both.apply(([o, v]) => renderPodmanExistsProbe(`volume:${name}`, "volume", o, v)))]).apply(([v, facts]) => volumeDrift(v, facts)),
        triggers: [args.owner, args.volumeName],
      },
      { parent: this, dependsOn: opts?.dependsOn, retainOnDelete: !args.destroyData },
    );
    this.registerOutputs({ volumeName: this.volumeName });
  }
}
