/**
 * GiteaContainer: the rootless Gitea container, configured entirely through GITEA__* variables
 * (no web installer): its image, the GiteaService that runs it, the wait for /api/healthz, and
 * its admin account.
 */
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { GiteaService } from "../giteaService/giteaService";
import { ContainerSpec, unitPaths } from "../giteaService/render";
import { deployedCheck } from "../backup/drift";
import { renderUpgradeScript, upgradeStatePath } from "../backup/render";
import { Host } from "../host/host";
import { KEYS_FILE } from "../keys/render";
import { GiteaTlsSettings, giteaTlsEnvironment, HealthTarget, tlsVolumeMount } from "../tls/render";
import { imageCheck } from "./drift";
import { defaultsNotOverridden, DEFAULT_SETTINGS, GiteaSetting, recordSetting, renderForgetDroppedSettings, settingsEnvironment } from "./settings";
import { giteaEnvironment, GiteaSecrets, GiteaServerSettings, GITEA_HTTP_PORT, GITEA_SSH_PORT, renderAdminScript, renderGiteaSecretEnv, renderHealthScript, renderImageScript } from "./render";

export interface GiteaContainerArgs {
  host: Host;
  user: pulumi.Input<string>;
  image: pulumi.Input<string>;
  /** Absolute path of an image archive on the host, loaded instead of pulling. */
  imageArchive?: pulumi.Input<string | undefined>;
  /** Podman --userns for the container, e.g. "keep-id:uid=1000,gid=1000"; unset: Podman's default. */
  userns?: pulumi.Input<string | undefined>;
  containerName?: pulumi.Input<string>;
  httpPort: pulumi.Input<number>;
  sshPort: pulumi.Input<number>;
  settings: pulumi.Input<GiteaServerSettings>;
  secrets: pulumi.Input<GiteaSecrets>;
  /**
   * The owner's app.ini settings (config \`gitea\`, settings.ts). Plain ones go into the unit file
   * beside the program's own; \`secret\` ones only into the 0600 environment file.
   */
  ownerSettings?: { settings: pulumi.Input<GiteaSetting[]>; secret: boolean };
  /** The volume holding app.ini, where settings dropped from config are removed. */
  configVolume: string;
  volumes: pulumi.Input<Array<{ name: string; path: string }>>;
  healthTimeoutSeconds: pulumi.Input<number>;
  admin: { username: pulumi.Input<string>; email: pulumi.Input<string>; password: pulumi.Input<string> };
  /** The backup tool (components/backup): a new image is backed up before, and rolled back when it fails health. */
  backupTool?: pulumi.Input<string>;
  /** Let an image with an older Gitea replace a newer one. */
  allowDowngrade?: pulumi.Input<boolean>;
  /** HTTPS (components/tls): Gitea's own TLS settings and the certificate volume's mount. */
  tls: GiteaTlsSettings;
  /** Where the health wait reaches Gitea: https to the public host, sent to this host's loopback. */
  health: pulumi.Input<HealthTarget>;
}

export class GiteaContainer extends pulumi.ComponentResource {
  readonly service: GiteaService;
  /** Before an image change: the downgrade check and the backup (when a backup tool is given). */
  readonly upgrade?: command.remote.Command;
  readonly healthy: command.remote.Command;
  readonly admin: command.remote.Command;

  constructor(name: string, args: GiteaContainerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:GiteaContainer", name, {}, opts);
    const containerName = pulumi.output(args.containerName ?? "gitea");
    const user = pulumi.output(args.user);

    const image = args.host.converge(
      `${name}-image`,
      {
        create: pulumi.all([user, args.image, args.imageArchive]).apply(([u, i, a]) => renderImageScript(u, i, a || undefined)),
        check: pulumi.all([user, args.image]).apply(([u, i]) => imageCheck(u, i)),
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );

    const ownerSettings = pulumi.output(args.ownerSettings?.settings ?? []);
    const ownerSecret = args.ownerSettings?.secret ?? false;
    // Which settings the owner set is no secret, even when their values are.
    const ownerNames = pulumi.unsecret(ownerSettings.apply((list) => list.map(({ section, key }) => ({ section, key }))));
    // The unit's GITEA__ variables: the program's own, its defaults the owner did not set, the
    // record of what it manages (settings.ts), then the owner's.
    const environment = pulumi
      .all([args.settings, ownerNames, ownerSecret ? pulumi.output([] as GiteaSetting[]) : ownerSettings])
      .apply(([settings, names, plain]) => ({
        ...giteaEnvironment(settings),
        ...giteaTlsEnvironment(args.tls),
        ...settingsEnvironment([...defaultsNotOverridden(names), recordSetting([...DEFAULT_SETTINGS, ...names]), ...plain]),
      }));
    const containerSpec = pulumi
      .all([containerName, args.image, args.httpPort, args.sshPort, args.volumes, environment, args.userns])
      .apply(([cname, img, httpPort, sshPort, volumes, environment, userns]): ContainerSpec => ({
        containerName: cname,
        image: img,
        ports: [
          { host: httpPort, container: GITEA_HTTP_PORT },
          { host: sshPort, container: GITEA_SSH_PORT },
        ],
        volumes: [...volumes, ...[tlsVolumeMount(args.tls.mode)].filter((m) => m !== undefined)],
        // Relative to the home: systemd units say %h/, OpenRC's service runs in the home.
        envFiles: [unitPaths("quadlet", cname).envFile, KEYS_FILE],
        environment,
        userns: userns || undefined,
      }));
    const secretEnv = pulumi.secret(
      pulumi.all([args.secrets, ownerSettings]).apply(([secrets, settings]) => renderGiteaSecretEnv({ ...secrets, settings: ownerSecret ? settingsEnvironment(settings) : undefined })),
    );
    const forgetDropped = ownerNames.apply((names) => renderForgetDroppedSettings(args.configVolume, [...DEFAULT_SETTINGS, ...names]));

    const backupTool = pulumi.output(args.backupTool);
    // A plain value decides whether the command exists (never create resources inside apply()).
    this.upgrade =
      args.backupTool === undefined
        ? undefined
        : args.host.converge(
            `${name}-upgrade`,
            {
              create: pulumi.all([backupTool, args.image, args.allowDowngrade ?? false]).apply(([tool, img, allowDowngrade]) => renderUpgradeScript({ tool: tool!, image: img, allowDowngrade })),
              check: pulumi.all([user, args.image]).apply(([u, img]) => deployedCheck(u, img)),
            },
            { parent: this, dependsOn: [image] },
          );
    this.service = new GiteaService(`${name}-service`, { host: args.host, user, container: containerSpec, environment: secretEnv, beforeStart: forgetDropped }, { parent: this, dependsOn: [this.upgrade ?? image] });

    this.healthy = args.host.run(
      `${name}-health`,
      {
        create: pulumi
          .all([args.host.platform, user, this.service.service, containerName, args.health, args.healthTimeoutSeconds, args.image, backupTool])
          .apply(([p, u, service, cname, health, timeoutSeconds, img, tool]) =>
            renderHealthScript({
              init: p.init,
              user: u,
              service,
              logFile: unitPaths("openrc", cname).logFile!,
              health,
              timeoutSeconds,
              image: img,
              backupTool: tool,
              upgradeStateFile: tool ? upgradeStatePath(u) : undefined,
            }),
          ),
        // Wait again whenever the unit's files change, since that restarts Gitea. The secrets
        // count by their digest, which is no secret (they are random and long).
        triggers: [this.service.unitFile, pulumi.unsecret(secretEnv.apply((env) => createHash("sha256").update(env).digest("hex")))],
      },
      { parent: this, dependsOn: [this.service] },
    );

    this.admin = args.host.run(
      `${name}-admin`,
      {
        create: pulumi
          .all([user, containerName, args.admin.username, args.admin.email])
          .apply(([u, c, username, email]) => renderAdminScript({ user: u, containerName: c, username, email })),
        stdin: args.admin.password,
        secret: true,
      },
      { parent: this, dependsOn: [this.healthy] },
    );
    this.registerOutputs({});
  }
}
