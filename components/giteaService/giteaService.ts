/**
 * GiteaService: the service that runs the Gitea container as the rootless user, on every init
 * system. On systemd hosts a unit of the user's systemd manager, as a Quadlet `.container` file
 * or a classic `.service`; on OpenRC hosts (Alpine) a system service that runs it as the user.
 * With its 0600 environment file for secrets. Installed, started and started at boot; a change
 * of a file, or a container that differs from the unit's settings, restarts it.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { Bash, fileDigest } from "../render/shell";
import { renderUnitProbe, unitCheck } from "./drift";
import { ContainerSpec, giteaContainerCheck, renderGiteaUnit, renderUnitInstallScript, renderUnitRemoveScript, UnitScriptSpec, unitPaths } from "./render";

export interface GiteaServiceArgs {
  host: Host;
  user: pulumi.Input<string>;
  /** The container the service runs; its name is the service's name. */
  container: pulumi.Input<ContainerSpec>;
  /** Content of the service's environment file (secret), delivered through stdin. */
  environment: pulumi.Input<string>;
  /** Bash the install script runs before it (re)starts the service; may set changed=1 to restart it. */
  beforeStart?: pulumi.Input<Bash>;
}

export class GiteaService extends pulumi.ComponentResource {
  /** The service's name on the host (NAME.service under systemd, NAME under OpenRC). */
  readonly service: pulumi.Output<string>;
  /** The unit file as installed: it changes whenever the service restarts for new settings. */
  readonly unitFile: pulumi.Output<string>;
  readonly installed: command.remote.Command;

  constructor(name: string, args: GiteaServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    // Named SystemdUserUnit before it ran OpenRC services too: the alias keeps existing stacks' resources.
    super("gitea-homelab:components:GiteaService", name, {}, { ...opts, aliases: [{ type: "gitea-homelab:components:SystemdUserUnit" }, ...(opts?.aliases ?? [])] });
    const platform = args.host.platform;
    const container = pulumi.output(args.container);
    const spec = pulumi.all([args.user, container, platform, args.beforeStart]).apply(
      ([user, c, p, beforeStart]): UnitScriptSpec => ({
        user,
        name: c.containerName,
        style: p.unitStyle,
        content: renderGiteaUnit(p.unitStyle, c),
        hasEnvironment: true,
        container: giteaContainerCheck(c),
        beforeStart,
      }),
    );
    this.unitFile = spec.apply((s) => s.content);
    this.service = spec.apply((s) => unitPaths(s.style, s.name).service);
    const envDigest = pulumi.output(args.environment).apply(fileDigest);
    // The env file's digest is unknown in a fresh preview (the runner token is generated): the probe does without it.
    const probe = pulumi.all([args.user, container, args.host.systemdUnitStyle]).apply(([user, c, systemdStyle]) =>
      renderUnitProbe({ user, name: c.containerName, hasEnvironment: true, container: giteaContainerCheck(c), style: systemdStyle }),
    );
    this.installed = args.host.converge(
      `${name}-unit`,
      {
        create: spec.apply(renderUnitInstallScript),
        delete: spec.apply(renderUnitRemoveScript),
        stdin: args.environment,
        secret: true,
        check: pulumi.all([args.user, container, probe, envDigest]).apply(([user, c, p, env]) =>
          unitCheck({ user, name: c.containerName, hasEnvironment: true, container: giteaContainerCheck(c) }, p, (platform) => renderGiteaUnit(platform.unitStyle, c), env),
        ),
        probe,
        triggers: [spec.apply((s) => `${s.user}/${s.style}/${s.name}`)],
      },
      // Both styles make the same service and share the env file: remove the old before the new.
      { parent: this, dependsOn: opts?.dependsOn, deleteBeforeReplace: true },
    );
    this.registerOutputs({ service: this.service });
  }
}
