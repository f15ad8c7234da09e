/** Example values the unit tests share. */
import { RunnerSettings } from "../../components/runner/render";
import { ContainerSpec } from "../../components/giteaService/render";
import { giteaEnvironment } from "../../components/gitea/render";
import { Platform } from "../../components/host/platform";
import { BackupInstallSpec } from "../../components/backup/render";

export const CONTAINER_SPEC: ContainerSpec = {
  containerName: "gitea",
  image: "docker.gitea.com/gitea:1.27.3-rootless",
  ports: [
    { host: 4111, container: 3000 },
    { host: 3333, container: 2222 },
  ],
  volumes: [
    { name: "gitea-data", path: "/var/lib/gitea" },
    { name: "gitea-config", path: "/etc/gitea" },
  ],
  envFiles: [".config/gitea-homelab/gitea.env", ".config/gitea-homelab/gitea-keys.env"],
  environment: giteaEnvironment({ publicHost: "git.example.com", rootUrl: "https://git.example.com/100%/", sshPort: 3333, database: "sqlite3" }),
};

export const RUNNER_SETTINGS: RunnerSettings = {
  binaryPath: "/opt/runner/bin/forgejo-like",
  source: { url: "https://dl.example.com/act_runner-0.2.13-linux-amd64", sha256: "a".repeat(64) },
  configDir: "/etc/act_runner",
  stateDir: "/var/lib/act_runner",
  name: "wsl-runner",
  labels: ["ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest", "self:host"],
  capacity: 2,
  timeout: "3h",
  instanceUrl: "http://192.168.1.10:4111/",
  serviceName: "act_runner.service",
  network: "",
};

/** Platforms as the host decides them (see decidePlatform). */
export const FEDORA: Platform = { family: "fedora", osId: "fedora", packageManager: "dnf", init: "systemd", unitStyle: "quadlet", firewall: "firewalld" };
export const DEBIAN: Platform = { family: "debian", osId: "debian", packageManager: "apt", init: "systemd", unitStyle: "quadlet", firewall: "firewalld" };
export const ALPINE: Platform = { family: "alpine", osId: "alpine", packageManager: "apk", init: "openrc", unitStyle: "openrc", firewall: "none" };

/** The backup tool's settings for a systemd host with a Quadlet unit. */
export const BACKUP_SPEC: BackupInstallSpec = {
  init: "systemd",
  unitStyle: "quadlet",
  user: "rootless",
  containerName: "gitea",
  volumes: ["gitea-data", "gitea-config"],
  backupDir: "/var/backups/gitea-homelab",
  keep: 7,
  health: { url: "http://127.0.0.1:4111/api/healthz", caFile: "" },
  healthTimeoutSeconds: 600,
  schedule: "daily",
  offsite: { repository: "", backend: "", keep: [] },
};

/** Every command the server stack registers, whatever the host's OS. */
export const SERVER_COMMAND_NAMES = [
  "gitea-admin",
  "gitea-backup-schedule",
  "gitea-config-volume",
  "gitea-data-volume",
  "gitea-health",
  "gitea-http-port",
  "gitea-https-certificate",
  "gitea-image",
  "gitea-keys-file",
  "gitea-service-unit",
  "gitea-ssh-port",
  "gitea-tls-volume",
  "gitea-upgrade",
  "gitea-user-account",
  "server-preflight",
];
