/**
 * The server role: a bare Fedora, Debian or Alpine host becomes a firewalled, rootless Gitea that
 * survives reboots, with its admin account and a runner registration token already made.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { GiteaBackup } from "../components/backup/giteaBackup";
import { FirewallPort } from "../components/firewall/firewallPort";
import { GiteaContainer } from "../components/gitea/giteaContainer";
import { unitPaths } from "../components/giteaService/render";
import { Host } from "../components/host/host";
import { GiteaKeys } from "../components/keys/giteaKeys";
import { PodmanVolume } from "../components/volume/podmanVolume";
import { RootlessUser } from "../components/rootlessUser/rootlessUser";
import { AcmeCertificate } from "../components/tls/acmeCertificate";
import { GiteaTls } from "../components/tls/giteaTls";
import { healthTarget } from "../components/tls/render";
import { urlHost } from "./config";
import { requireSsh } from "./reachability";
import { readServerConfig, ServerSecrets, ServerSettings } from "./serverConfig";

/** The volumes Gitea's rootless image keeps its state in. */
export const GITEA_VOLUMES = [
  { name: "gitea-data", path: "/var/lib/gitea" },
  { name: "gitea-config", path: "/etc/gitea" },
];

/** The container's name, also the service's (gitea.service, /etc/init.d/gitea). */
export const GITEA_CONTAINER = "gitea";

export function sshCloneBase(publicHost: string, sshPort: number): string {
  return `ssh://git@${urlHost(publicHost)}:${sshPort}/`;
}

export function buildServerStack(settings: ServerSettings, secrets: ServerSecrets) {
  const host = new Host("server", {
    host: settings.connection.host,
    port: settings.connection.port,
    user: settings.connection.user,
    hostKey: settings.connection.hostKey,
    privateKey: secrets.privateKey,
    firewall: settings.firewall,
    unitStyle: settings.unitStyle,
  });

  const user = new RootlessUser("gitea-user", {
    host,
    username: settings.rootlessUser,
    removeOnDestroy: settings.removeUserOnDestroy,
    storageDriver: settings.storageDriver,
  });
  const volumes = GITEA_VOLUMES.map(
    (v) => new PodmanVolume(v.name, { host, owner: user.username, volumeName: v.name, destroyData: settings.destroyData }, { dependsOn: [user] }),
  );

  const health = healthTarget(settings.tls.mode, urlHost(settings.publicHost), settings.httpPort);

  // Backups first: a restore (restoreFrom) fills the empty volumes before anything reads them.
  const backup = new GiteaBackup(
    "gitea-backup",
    {
      host,
      user: user.username,
      containerName: GITEA_CONTAINER,
      volumes: GITEA_VOLUMES.map((v) => v.name),
      backupDir: settings.backupDir,
      keep: settings.backupKeep,
      schedule: settings.backupSchedule,
      health,
      healthTimeoutSeconds: settings.healthTimeoutSeconds,
      restoreFrom: settings.restoreFrom,
      destroyData: settings.destroyData,
      offsite:
        settings.offsite === undefined
          ? undefined
          : {
              settings: settings.offsite,
              password: pulumi.secret(secrets.offsitePassword ?? ""),
              environment: pulumi.secret(secrets.offsiteEnvironment ?? {}),
              sshKey: secrets.offsiteSshKey,
            },
    },
    { dependsOn: volumes },
  );
  // The keys Gitea encrypts with live on the host with the data; Pulumi holds only what may rotate.
  const keys = new GiteaKeys(
    "gitea-keys",
    { host, user: user.username, dataVolume: GITEA_VOLUMES[0].name, legacyEnvFile: unitPaths("quadlet", GITEA_CONTAINER).envFile, destroyData: settings.destroyData },
    { dependsOn: [backup.restored ?? backup.installed, ...volumes] },
  );

  // HTTPS: after a restore (which brings the CA back), before Gitea starts with the certificate.
  const tlsMode = settings.tls.mode;
  const tls =
    tlsMode === "off"
      ? undefined
      : new GiteaTls(
          "gitea-https",
          {
            host,
            user: user.username,
            mode: tlsMode,
            publicHost: settings.publicHost,
            containerName: GITEA_CONTAINER,
            given: tlsMode === "given" ? { chain: settings.tls.givenChain!, key: secrets.tlsKey.apply((k) => k ?? "") } : undefined,
            acmeCaRoot: settings.tls.acme?.caRoot,
            destroyData: settings.destroyData,
          },
          { dependsOn: [backup.restored ?? backup.installed, ...volumes] },
        );

  // ACME's CA checks the host on the HTTPS port while Gitea starts (it obtains the certificate
  // before it serves anything), so with acme the firewall opens first; otherwise once Gitea runs.
  const openFirewall = (dependsOn: pulumi.Resource[]) =>
    settings.firewall === "none"
      ? []
      : ([["gitea-http", settings.httpPort], ["gitea-ssh", settings.sshPort]] as const).map(([name, port]) => new FirewallPort(name, { host, port, zone: settings.firewallZone }, { dependsOn }));
  const firewallFirst = tlsMode === "acme" ? openFirewall([user]) : [];

  const alphanumeric = { special: false, upper: true, lower: true, numeric: true };
  const runnerToken = new random.RandomPassword("gitea-runner-registration-token", { length: 48, ...alphanumeric });
  const generatedAdminPassword = new random.RandomPassword("gitea-admin-password", { length: 24, ...alphanumeric });
  const adminPassword = pulumi.secret(pulumi.all([secrets.adminPassword, generatedAdminPassword.result]).apply(([configured, generated]) => configured ?? generated));

  const gitea = new GiteaContainer(
    "gitea",
    {
      host,
      user: user.username,
      image: settings.image,
      imageArchive: settings.imageArchive,
      userns: settings.userns,
      httpPort: settings.httpPort,
      sshPort: settings.sshPort,
      settings: { publicHost: settings.publicHost, rootUrl: settings.rootUrl, sshPort: settings.sshPort, database: settings.database },
      containerName: GITEA_CONTAINER,
      secrets: runnerToken.result.apply((rt) => ({ runnerRegistrationToken: rt })),
      ownerSettings: { settings: settings.gitea.secret ? pulumi.secret(settings.gitea.settings) : settings.gitea.settings, secret: settings.gitea.secret },
      configVolume: GITEA_VOLUMES[1].name,
      volumes: GITEA_VOLUMES,
      healthTimeoutSeconds: settings.healthTimeoutSeconds,
      admin: { username: settings.adminUsername, email: settings.adminEmail, password: adminPassword },
      backupTool: backup.tool,
      allowDowngrade: settings.allowDowngrade,
      tls: settings.tls,
      health,
    },
    { dependsOn: [keys, backup, ...(tls ? [tls] : []), ...firewallFirst] },
  );
  if (tlsMode === "acme") {
    new AcmeCertificate(
      "gitea-acme",
      { host, user: user.username, publicHost: settings.publicHost, httpPort: settings.httpPort, containerName: GITEA_CONTAINER, timeoutSeconds: settings.healthTimeoutSeconds },
      { dependsOn: [gitea] },
    );
  } else {
    openFirewall([gitea.service]);
  }

  return {
    giteaUrl: settings.rootUrl,
    sshCloneBase: sshCloneBase(settings.publicHost, settings.sshPort),
    adminUsername: settings.adminUsername,
    adminPassword,
    runnerRegistrationToken: pulumi.secret(runnerToken.result),
    image: settings.image,
    backupDir: settings.backupDir,
    lastBackup: backup.lastBackup,
    ...(backup.offsite ? { offsiteRepository: backup.offsite.repository, lastOffsiteBackup: backup.offsite.lastOffsiteBackup } : {}),
    tls: tlsMode,
    ...(tls && tlsMode === "own-ca" ? { caCertificate: tls.caCertificate } : {}),
    ...(settings.rootUrlNote ? { rootUrlNote: settings.rootUrlNote } : {}),
  };
}

export async function serverStack() {
  const { settings, secrets } = readServerConfig();
  await requireSsh(settings.connection);
  return buildServerStack(settings, secrets);
}
