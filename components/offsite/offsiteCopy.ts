/**
 * OffsiteCopy: restic and the repository's secrets on the server, the repository opened (made
 * the first time, never again), the newest backup pushed when the repository lacks it, and the
 * scheduled `restic check`. The pushes themselves are the backup tool's (see render.ts). With
 * restoreFrom offsite:…, the snapshot is fetched and restored onto the empty volumes. Destroy
 * removes the schedule and the secrets from the server, never the repository.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../host/host";
import { checkScheduleFor } from "../host/schedule";
import { lastOffsiteBackupOf, offsiteCheck, renderOffsiteProbe } from "./drift";
import { knownHostsLine, OffsiteInstallSpec, renderOffsiteInstallScript, renderOffsitePayload, renderOffsiteRemoveScript, renderOffsiteRestoreScript } from "./render";
import { OffsiteSettings } from "./settings";

export interface OffsiteCopyArgs {
  host: Host;
  user: pulumi.Input<string>;
  /** The backup tool, which pushes and restores. */
  tool: pulumi.Input<string>;
  backupDir: pulumi.Input<string>;
  /** Plain values: they decide which files and commands exist. */
  settings: OffsiteSettings;
  password: pulumi.Input<string>;
  environment: pulumi.Input<Record<string, string>>;
  sshKey?: pulumi.Input<string | undefined>;
  /** restoreFrom offsite:SNAPSHOT ("latest" or an id): restore it onto the empty volumes. */
  restoreSnapshot?: string;
}

export class OffsiteCopy extends pulumi.ComponentResource {
  readonly installed: command.remote.Command;
  readonly restored?: command.remote.Command;
  /** The last push the host recorded: "SNAPSHOT (BACKUP) at TIME", or "none yet". */
  readonly lastOffsiteBackup: pulumi.Output<string>;
  readonly repository: pulumi.Output<string>;

  constructor(name: string, args: OffsiteCopyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:OffsiteCopy", name, {}, opts);
    const s = args.settings;
    const user = pulumi.output(args.user);
    const values = pulumi.all([user, args.tool, args.backupDir]);
    const spec = (platform: { init: OffsiteInstallSpec["init"]; packageManager: OffsiteInstallSpec["packageManager"]; osId?: string }, u: string, tool: string): OffsiteInstallSpec => ({
      init: platform.init,
      packageManager: platform.packageManager,
      user: u,
      tool,
      backend: s.backend,
      check: platform.osId === undefined ? s.check : checkScheduleFor({ init: platform.init, osId: platform.osId }, s.check, "offsiteCheck"),
      knownHosts: knownHostsLine(s.hostKey),
      caCertificate: s.caCertificate ?? "",
    });
    const files = { environment: true, sshKey: s.backend === "sftp" };
    const payload = pulumi.secret(
      pulumi.all([args.password, args.environment, args.sshKey]).apply(([password, environment, sshKey]) => renderOffsitePayload({ password, environment, sshKey: sshKey ?? undefined })),
    );
    const checkName = `${name}-repository`;
    this.installed = args.host.converge(
      checkName,
      {
        create: pulumi.all([args.host.platform, values]).apply(([p, [u, tool]]) => renderOffsiteInstallScript(spec(p, u, tool))),
        delete: pulumi.all([args.host.platform, values]).apply(([p, [u, tool]]) => renderOffsiteRemoveScript({ init: p.init, user: u, tool })),
        stdin: payload,
        secret: true,
        check: values.apply(([u, tool, dir]) => offsiteCheck(u, dir, files, (init, packageManager) => spec({ init, packageManager }, u, tool))),
        probe: pulumi.all([user, args.backupDir]).apply(([u, dir]) => renderOffsiteProbe(u, dir)),
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.lastOffsiteBackup = args.host.probed(checkName).apply(lastOffsiteBackupOf);
    this.repository = pulumi.output(s.repository);
    if (args.restoreSnapshot !== undefined) {
      this.restored = args.host.run(`${name}-restore`, { create: pulumi.output(args.tool).apply((tool) => renderOffsiteRestoreScript(tool, args.restoreSnapshot!)) }, { parent: this, dependsOn: [this.installed] });
    }
    this.registerOutputs({ lastOffsiteBackup: this.lastOffsiteBackup, repository: this.repository });
  }
}
