/**
 * GiteaContainer: the rootless Gitea container, configured entirely through GITEA__* variables
 * (no web installer), run by a SystemdUserUnit, then waited for (GET /api/healthz) and given
 * its admin account.
 */
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "./host";
import { IniEntries, renderEnvFile, renderIni, unit, UnitValue } from "./render/unitFile";
import { Facts, podmanPresence, renderPodmanExistsProbe } from "./render/probe";
import { renderOpenrcInitScript } from "./render/openrc";
import { renderScript, sh } from "./render/shell";
import { ConfiguredUnitStyle, resolveUnitStyle, UnitStyle } from "./platform";
import { ContainerCheck, renderContainerFacts, SystemdUserUnit, unitPaths } from "./systemdUserUnit";

/** Ports inside the rootless image. */
export const GITEA_HTTP_PORT = 3000;
export const GITEA_SSH_PORT = 2222;

export interface GiteaServerSettings {
  publicHost: string;
  rootUrl: string;
  /** The SSH port users clone through: the published one. */
  sshPort: number;
  database: "sqlite3";
}

/** Non-secret Gitea settings; Gitea's image applies GITEA__section__KEY variables at every start. */
export function giteaEnvironment(s: GiteaServerSettings): Record<string, string> {
  return {
    GITEA__security__INSTALL_LOCK: "true",
    GITEA__server__DOMAIN: s.publicHost,
    GITEA__server__SSH_DOMAIN: s.publicHost,
    GITEA__server__ROOT_URL: s.rootUrl,
    GITEA__server__HTTP_PORT: String(GITEA_HTTP_PORT),
    GITEA__server__SSH_PORT: String(s.sshPort),
    GITEA__server__SSH_LISTEN_PORT: String(GITEA_SSH_PORT),
    GITEA__server__START_SSH_SERVER: "true",
    GITEA__database__DB_TYPE: s.database,
  };
}

export interface GiteaSecrets {
  secretKey: string;
  internalToken: string;
  /** base64url of 32 random bytes, no padding. */
  jwtSecret: string;
  runnerRegistrationToken: string;
}

/** The 0600 environment file's content: the secrets Gitea needs, never put in the unit file. */
export function renderGiteaSecretEnv(s: GiteaSecrets): string {
  return renderEnvFile({
    GITEA__security__SECRET_KEY: s.secretKey,
    GITEA__security__INTERNAL_TOKEN: s.internalToken,
    GITEA__oauth2__JWT_SECRET: s.jwtSecret,
    GITEA_RUNNER_REGISTRATION_TOKEN: s.runnerRegistrationToken,
  });
}

export interface ContainerSpec {
  containerName: string;
  image: string;
  ports: Array<{ host: number; container: number }>;
  volumes: Array<{ name: string; path: string }>;
  /** The secret environment file, relative to the rootless user's home. */
  envFile: string;
  environment: Record<string, string>;
  /** Podman's --userns, e.g. keep-id:uid=1000,gid=1000 (bind-mounted host dirs keep their owner). */
  userns?: string;
}

const UNIT_DESCRIPTION = "Gitea (rootless Podman, managed by gitea-homelab)";

/** [Unit] lines both unit styles share. */
function unitSection(): IniEntries {
  return [
    ["Description", unit.literal(UNIT_DESCRIPTION)],
    ["Wants", unit.literal("network-online.target")],
    ["After", unit.literal("network-online.target")],
  ];
}

const installSection = { name: "Install", entries: [["WantedBy", unit.literal("default.target")]] as IniEntries };

/** Volumes are relabelled (:Z) for SELinux; Podman skips the relabel where SELinux is off. */
function volumeArg(v: { name: string; path: string }): string {
  return `${v.name}:${v.path}:Z`;
}

/** The env file as systemd sees it: %h is the rootless user's home. */
function homeRelative(path: string): UnitValue {
  return unit.concat(unit.literal("%h/"), unit.text(path));
}

export function renderGiteaQuadlet(spec: ContainerSpec): string {
  const container: IniEntries = [
    ["ContainerName", unit.execToken(spec.containerName)],
    ["Image", unit.execToken(spec.image)],
    ...spec.ports.map((p): [string, UnitValue] => ["PublishPort", unit.execToken(`${p.host}:${p.container}`)]),
    ...spec.volumes.map((v): [string, UnitValue] => ["Volume", unit.execToken(volumeArg(v))]),
    ["EnvironmentFile", homeRelative(spec.envFile)],
    ...(spec.userns ? [["UserNS", unit.execToken(spec.userns)] as [string, UnitValue]] : []),
    ...Object.entries(spec.environment).map(([k, v]): [string, UnitValue] => ["Environment", unit.containerEnvironment(k, v)]),
  ];
  return renderIni([
    { name: "Unit", entries: unitSection() },
    { name: "Container", entries: container },
    // A first start may pull the image; Restart=always brings Gitea back after a crash.
    { name: "Service", entries: [["Restart", unit.literal("always")], ["TimeoutStartSec", 900]] },
    installSection,
  ]);
}

/** `podman run` options both command-line styles share: name, ports, volumes, userns (the env file differs). */
function containerRunArgs(spec: ContainerSpec): string[] {
  return [
    `--name=${spec.containerName}`,
    ...spec.ports.map((p) => `--publish=${p.host}:${p.container}`),
    ...spec.volumes.map((v) => `--volume=${volumeArg(v)}`),
    ...(spec.userns ? [`--userns=${spec.userns}`] : []),
  ];
}

/** The classic unit `podman generate systemd --new` would write, for Podman older than 4.4. */
export function renderGiteaService(spec: ContainerSpec): string {
  const run = unit.command([
    unit.literal("/usr/bin/podman run --cidfile=%t/%n.ctr-id --cgroups=no-conmon --rm --sdnotify=conmon --replace --detach"),
    ...containerRunArgs(spec).map(unit.execWord),
    unit.concat(unit.literal("--env-file=%h/"), unit.execWord(spec.envFile)),
    ...Object.entries(spec.environment).map(([k, v]) => unit.execWord(`--env=${k}=${v}`)),
    unit.execWord(spec.image),
  ]);
  return renderIni([
    { name: "Unit", entries: [...unitSection(), ["RequiresMountsFor", unit.literal("%t/containers")]] },
    {
      name: "Service",
      entries: [
        ["Environment", unit.literal("PODMAN_SYSTEMD_UNIT=%n")],
        ["Restart", unit.literal("always")],
        ["TimeoutStartSec", 900],
        ["TimeoutStopSec", 70],
        ["ExecStart", run],
        ["ExecStop", unit.literal("/usr/bin/podman stop --ignore --time=10 --cidfile=%t/%n.ctr-id")],
        ["ExecStopPost", unit.literal("/usr/bin/podman rm --force --ignore --time=10 --cidfile=%t/%n.ctr-id")],
        ["Type", unit.literal("notify")],
        ["NotifyAccess", unit.literal("all")],
      ],
    },
    installSection,
  ]);
}

/**
 * The OpenRC service for Alpine: `podman run` in the foreground under supervise-daemon, as the
 * rootless user, restarted after a crash. `envFile` is relative to the user's home.
 */
export function renderGiteaOpenrc(spec: ContainerSpec): string {
  return renderOpenrcInitScript({
    description: UNIT_DESCRIPTION,
    command: "/usr/bin/podman",
    args: [
      "run",
      "--rm",
      "--replace",
      ...containerRunArgs(spec),
      `--env-file=${spec.envFile}`,
      ...Object.entries(spec.environment).map(([k, v]) => ({ value: `--env=${k}=${v}` })),
      { value: spec.image },
    ],
    need: ["net", "cgroups"],
    containerName: spec.containerName,
  });
}

/** Renders the unit file for the resolved style. */
export function renderGiteaUnit(style: UnitStyle, spec: ContainerSpec): string {
  if (style === "openrc") return renderGiteaOpenrc(spec);
  return style === "quadlet" ? renderGiteaQuadlet(spec) : renderGiteaService(spec);
}

/** Makes the image present in the user's storage before the unit starts: loaded from a local archive, else pulled. */
export function renderImageScript(user: string, image: string, archive?: string): string {
  return renderScript(
    { purpose: "Make the image present in the rootless user's storage: loaded from an archive, else pulled.", vars: { user, image, archive: archive ?? "" } },
    sh`
if as_user "$user" podman image exists "$image"; then
  echo "image $image present"
elif [[ -n $archive ]]; then
  [[ -r $archive ]] || die "image archive $archive does not exist on the host (gitea-homelab:imageArchive)"
  as_user "$user" podman load --quiet --input "$archive"
  as_user "$user" podman image exists "$image" || die "$archive does not contain $image (gitea-homelab:image / gitea-homelab:imageArchive)"
  echo "image $image loaded from $archive"
else
  as_user "$user" podman pull --quiet "$image" >/dev/null || die "cannot pull $image (gitea-homelab:image); on a host without internet set gitea-homelab:imageArchive"
  echo "image $image pulled"
fi
`,
  );
}

export function imageDrift(image: string, facts: Facts | undefined): string[] {
  const presence = podmanPresence(facts, "image");
  if (presence === "present") return [];
  if (presence === "missing") return [`image ${image}: missing from the user's storage, expected present`];
  return [`image ${image}: state unknown (${presence.unknown})`];
}

/** The container as the unit runs it, compared on the non-secret settings only. */
export function giteaContainerCheck(spec: ContainerSpec): ContainerCheck {
  const envKeys = Object.keys(spec.environment).sort();
  return { name: spec.containerName, envKeys, facts: renderContainerFacts(spec, envKeys) };
}

export interface HealthSpec {
  user: string;
  service: string;
  /** Where OpenRC hosts log the service (systemd hosts: the journal). */
  logFile: string;
  httpPort: number;
  timeoutSeconds: number;
}

/** Waits for GET /api/healthz = 200 on the published port; on timeout prints the unit's last journal lines. */
export function renderHealthScript(s: HealthSpec): string {
  return renderScript(
    { purpose: "Wait until Gitea answers /api/healthz on its published HTTP port.", vars: { user: s.user, service: s.service, log_file: s.logFile, url: `http://127.0.0.1:${s.httpPort}/api/healthz`, timeout: s.timeoutSeconds } },
    sh`
healthy() { [[ $(curl --silent --output /dev/null --max-time 5 --write-out '%{http_code}' "$url") == 200 ]]; }
if ! wait_for "$timeout" "$url to answer 200" healthy; then
  echo "last journal lines of $service:" >&2
  if [[ -d /run/systemd/system ]]; then
    journalctl --no-pager --lines=40 _UID="$(id -u "$user")" _SYSTEMD_USER_UNIT="$service" >&2 || true
  else
    tail -n 40 "$log_file" >&2 || true
  fi
  die "Gitea did not become healthy within $timeout seconds (gitea-homelab:healthTimeoutSeconds)"
fi
echo "Gitea healthy at $url"
`,
  );
}

export interface AdminSpec {
  user: string;
  containerName: string;
  username: string;
  email: string;
}

/**
 * Creates the admin account, or sets the password of the existing one. The password arrives on
 * stdin; `gitea admin user create/change-password` accept it only as an argument, so it is in
 * that one process's argv inside the container for the second it runs (the README says so).
 */
export function renderAdminScript(s: AdminSpec): string {
  return renderScript(
    { purpose: "Gitea admin account: created, or its password set to the stack's adminPassword.", vars: { user: s.user, container: s.containerName, admin: s.username, email: s.email } },
    sh`
gitea_cli() { as_user "$user" podman exec --interactive "$container" gitea "$@"; }
list_names() { gitea_cli admin user list "$@" </dev/null | awk 'NR > 1 { print $2 }'; }
# The password goes from stdin into the container's shell, never onto the SSH command line.
with_password() {
  # shellcheck disable=SC2016 # expanded by the container's shell
  as_user "$user" podman exec --interactive "$container" sh -c 'exec gitea admin user "$@" --password "$(cat)"' gitea-homelab "$@" >/dev/null
}
if list_names --admin | grep -qxF -- "$admin"; then
  # Runs only when the account is (re)made or its settings change, e.g. an up after destroy
  # that finds the old data: the adminPassword output must stay true.
  # Gitea's change-password marks the account "must change password" unless told otherwise,
  # and such an account is refused by the API (403) until it changes it in the web UI.
  with_password change-password --username "$admin" --must-change-password=false
  echo "admin $admin exists; password set to the stack's adminPassword"
  exit 0
fi
if list_names | grep -qxF -- "$admin"; then
  die "Gitea user $admin exists but is not an admin; make it one in Gitea or pick another gitea-homelab:adminUsername"
fi
with_password create --admin --username "$admin" --email "$email" --must-change-password=false
echo "admin $admin created"
`,
  );
}

export interface GiteaContainerArgs {
  host: Host;
  user: pulumi.Input<string>;
  image: pulumi.Input<string>;
  /** Absolute path of an image archive on the host, loaded instead of pulling. */
  imageArchive?: pulumi.Input<string | undefined>;
  /** The unit style on systemd hosts; Alpine (OpenRC) hosts always get an OpenRC service. */
  unitStyle: pulumi.Input<ConfiguredUnitStyle>;
  /** Podman --userns for the container, e.g. "keep-id:uid=1000,gid=1000"; unset: Podman's default. */
  userns?: pulumi.Input<string | undefined>;
  containerName?: pulumi.Input<string>;
  httpPort: pulumi.Input<number>;
  sshPort: pulumi.Input<number>;
  settings: pulumi.Input<GiteaServerSettings>;
  secrets: pulumi.Input<GiteaSecrets>;
  volumes: pulumi.Input<Array<{ name: string; path: string }>>;
  healthTimeoutSeconds: pulumi.Input<number>;
  admin: { username: pulumi.Input<string>; email: pulumi.Input<string>; password: pulumi.Input<string> };
}

export class GiteaContainer extends pulumi.ComponentResource {
  readonly unit: SystemdUserUnit;
  readonly healthy: command.remote.Command;
  readonly admin: command.remote.Command;

  constructor(name: string, args: GiteaContainerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:GiteaContainer", name, {}, opts);
    const containerName = pulumi.output(args.containerName ?? "gitea");
    const user = pulumi.output(args.user);

    const imageFacts = args.host.probe(pulumi.all([user, args.image]).apply(([u, i]) => renderPodmanExistsProbe(`image:${name}`, "image", u, i)));
    const image = args.host.run(
      `${name}-image`,
      {
        create: pulumi.all([user, args.image, args.imageArchive]).apply(([u, i, a]) => renderImageScript(u, i, a || undefined)),
        drift: pulumi.all([args.image, imageFacts]).apply(([i, facts]) => imageDrift(i, facts)),
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );

    // Independent of the host's platform: the probe, which finds the platform, compares with it.
    const containerSpec = pulumi
      .all([containerName, args.image, args.httpPort, args.sshPort, args.volumes, args.settings, args.userns])
      .apply(([cname, img, httpPort, sshPort, volumes, settings, userns]): ContainerSpec => ({
        containerName: cname,
        image: img,
        ports: [
          { host: httpPort, container: GITEA_HTTP_PORT },
          { host: sshPort, container: GITEA_SSH_PORT },
        ],
        volumes,
        // Relative to the home: systemd units say %h/, OpenRC's service runs in the home.
        envFile: unitPaths("quadlet", cname).envFile,
        environment: giteaEnvironment(settings),
        userns: userns || undefined,
      }));
    const content = pulumi.all([containerSpec, args.unitStyle, args.host.platform]).apply(([spec, configured, platform]) => {
      const style = resolveUnitStyle(configured, platform);
      return renderGiteaUnit(style, spec);
    });
    const secretEnv = pulumi.secret(pulumi.output(args.secrets).apply(renderGiteaSecretEnv));

    this.unit = new SystemdUserUnit(
      `${name}-service`,
      { host: args.host, user, name: containerName, style: args.unitStyle, content, environment: secretEnv, container: containerSpec.apply(giteaContainerCheck) },
      { parent: this, dependsOn: [image] },
    );

    this.healthy = args.host.run(
      `${name}-health`,
      {
        create: pulumi
          .all([user, this.unit.service, containerName, args.httpPort, args.healthTimeoutSeconds])
          .apply(([u, service, cname, httpPort, timeoutSeconds]) =>
            renderHealthScript({ user: u, service, logFile: unitPaths("openrc", cname).logFile!, httpPort, timeoutSeconds }),
          ),
        // Wait again whenever the unit's files change, since that restarts Gitea.
        triggers: [content, secretEnv.apply((env) => createHash("sha256").update(env).digest("hex"))],
      },
      { parent: this, dependsOn: [this.unit] },
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
