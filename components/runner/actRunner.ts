/**
 * ActRunner: a Gitea Actions runner as a system service whose jobs run in Podman (render.ts),
 * checked for drift (drift.ts). Registration happens once per instance/name/labels, recorded by
 * a fingerprint kept beside `.runner`; destroy removes it from Gitea too when it has an admin.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { runnerInstallCheck, runnerRegistrationCheck } from "./drift";
import { renderRunnerInstallScript, renderRunnerRegisterScript, renderRunnerRemoveScript, renderRunnerUnregisterScript, reportedRunnerVersion, runnerCommandStdin, RunnerSettings } from "./render";

export interface ActRunnerArgs {
  host: Host;
  settings: pulumi.Input<RunnerSettings>;
  registrationToken: pulumi.Input<string>;
  /** A Gitea admin, so that destroy can remove the runner from Gitea too. */
  giteaAdmin?: pulumi.Input<{ username: string; password: string } | undefined>;
  registerTimeoutSeconds?: pulumi.Input<number>;
}

export class ActRunner extends pulumi.ComponentResource {
  readonly installed: command.remote.Command;
  readonly registered: command.remote.Command;
  /** The version the installed binary reports (not the configured one, which may not be it). */
  readonly binaryVersion: pulumi.Output<string>;

  constructor(name: string, args: ActRunnerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:ActRunner", name, {}, opts);
    const settings = pulumi.output(args.settings);
    this.installed = args.host.converge(
      `${name}-install`,
      {
        create: settings.apply(renderRunnerInstallScript),
        delete: settings.apply(renderRunnerRemoveScript),
        check: settings.apply(runnerInstallCheck),
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.registered = args.host.converge(
      `${name}-register`,
      {
        create: pulumi.all([settings, args.registerTimeoutSeconds ?? 120]).apply(([s, t]) => renderRunnerRegisterScript(s, t)),
        delete: settings.apply(renderRunnerUnregisterScript),
        stdin: pulumi.all([args.registrationToken, args.giteaAdmin]).apply(([token, admin]) => runnerCommandStdin(token, admin)),
        secret: true,
        check: settings.apply(runnerRegistrationCheck),
      },
      { parent: this, dependsOn: [this.installed] },
    );
    this.binaryVersion = pulumi
      .all([this.installed.stdout, args.host.probed(`${name}-install`)])
      .apply(([stdout, facts]) => reportedRunnerVersion(stdout, facts?.version));
    this.registerOutputs({ binaryVersion: this.binaryVersion });
  }
}
