/**
 * GiteaBackup: the backup tool, the backup directory and the schedule (see render.ts), and, when
 * the stack sets restoreFrom, the restore of a backup onto empty volumes before Gitea first starts.
 * The backups are never removed by destroy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { HealthTarget } from "../tls/render";
import { Host } from "../host/host";
import { Platform } from "../host/platform";
import { backupCheck, lastBackupOf, restoreSourceCheck } from "./drift";
import { OffsiteCopy } from "../offsite/offsiteCopy";
import { offsiteToolSpec } from "../offsite/render";
import { OffsiteSettings } from "../offsite/settings";
import { backupToolPath, BackupInstallSpec, checkScheduleFor, renderBackupInstallScript, renderBackupRemoveScript, renderRestoreScript } from "./render";

export interface GiteaBackupArgs {
  host: Host;
  user: pulumi.Input<string>;
  containerName: pulumi.Input<string>;
  volumes: pulumi.Input<string[]>;
  backupDir: pulumi.Input<string>;
  keep: pulumi.Input<number>;
  /** OnCalendar expression (systemd), hourly/daily/weekly/monthly (OpenRC), or "off". */
  schedule: pulumi.Input<string>;
  /** Where a rollback waits for Gitea (https when it serves TLS), and how long. */
  health: pulumi.Input<HealthTarget>;
  healthTimeoutSeconds: pulumi.Input<number>;
  /**
   * What to restore onto empty volumes (a plain value: it decides whether the restore exists):
   * a backup directory on the host, or offsite:latest / offsite:SNAPSHOT from the repository.
   */
  restoreFrom?: string;
  /** Off-site copies of every backup (restic), when the stack sets a repository. */
  offsite?: {
    settings: OffsiteSettings;
    password: pulumi.Input<string>;
    environment: pulumi.Input<Record<string, string>>;
    sshKey?: pulumi.Input<string | undefined>;
  };
  /** Destroy removes the data too: the record of what it last ran on goes with it. */
  destroyData: boolean;
}

/** restoreFrom's prefix for a snapshot in the off-site repository (offsite:latest, offsite:ID). */
export const OFFSITE_RESTORE_PREFIX = "offsite:";

export class GiteaBackup extends pulumi.ComponentResource {
  readonly backupDir: pulumi.Output<string>;
  /** The newest backup on the host when this run looked ("none yet" before the first). */
  readonly lastBackup: pulumi.Output<string>;
  /** The tool's path on the host: `TOOL backup|restore|prepare-upgrade|rollback|deployed`. */
  readonly tool: pulumi.Output<string>;
  readonly installed: command.remote.Command;
  /** The restore, when restoreFrom is set; Gitea starts after it. */
  readonly restored?: command.remote.Command;
  /** The off-site copies, when the stack sets a repository. */
  readonly offsite?: OffsiteCopy;

  constructor(name: string, args: GiteaBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:GiteaBackup", name, {}, opts);
    const user = pulumi.output(args.user);
    this.backupDir = pulumi.output(args.backupDir);
    this.tool = user.apply(backupToolPath);
    const spec = (p: Platform, v: Omit<BackupInstallSpec, "init" | "unitStyle">): BackupInstallSpec => ({ ...v, init: p.init, unitStyle: p.unitStyle, schedule: checkScheduleFor(p, v.schedule) });
    const values = pulumi
      .all([user, args.containerName, args.volumes, args.backupDir, args.keep, args.schedule, args.health, args.healthTimeoutSeconds])
      .apply(([u, containerName, volumes, backupDir, keep, schedule, health, healthTimeoutSeconds]) => ({
        user: u,
        containerName,
        volumes,
        backupDir,
        keep,
        schedule,
        health,
        healthTimeoutSeconds,
        offsite: offsiteToolSpec(args.offsite?.settings),
      }));
    const scheduleName = `${name}-schedule`;
    this.installed = args.host.converge(
      scheduleName,
      {
        create: pulumi.all([args.host.platform, values]).apply(([p, v]) => renderBackupInstallScript(spec(p, v))),
        delete: pulumi.all([args.host.platform, user]).apply(([p, u]) => renderBackupRemoveScript({ init: p.init, user: u, destroyData: args.destroyData })),
        check: pulumi.all([user, this.backupDir, values]).apply(([u, dir, v]) => backupCheck(u, dir, (p) => spec(p, v))),
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.lastBackup = args.host.probed(scheduleName).apply(lastBackupOf);
    const restoreSnapshot = args.restoreFrom?.startsWith(OFFSITE_RESTORE_PREFIX) ? args.restoreFrom.slice(OFFSITE_RESTORE_PREFIX.length) : undefined;
    if (args.offsite !== undefined) {
      this.offsite = new OffsiteCopy(
        `${name}-offsite`,
        { host: args.host, user, tool: this.tool, backupDir: this.backupDir, ...args.offsite, restoreSnapshot },
        { parent: this, dependsOn: [this.installed] },
      );
      this.restored = this.offsite.restored;
    }
    if (args.restoreFrom !== undefined && restoreSnapshot === undefined) {
      // A restoreFrom that names no backup fails the preview, before anything on the host changes.
      args.host.verify(`${name}-restore-source`, user.apply((u) => restoreSourceCheck(u, args.restoreFrom!)));
      this.restored = args.host.run(`${name}-restore`, { create: user.apply((u) => renderRestoreScript(u, args.restoreFrom!)) }, { parent: this, dependsOn: [this.installed] });
    }
    this.registerOutputs({ backupDir: this.backupDir, lastBackup: this.lastBackup, lastOffsiteBackup: this.offsite?.lastOffsiteBackup });
  }
}
