/**
 * SystemdUserUnit: a unit of a rootless user's systemd manager, as a Quadlet `.container` file
 * or a classic `.service`, with an optional 0600 environment file for secrets. Installed,
 * reloaded, started and started at boot; a change of either file restarts it.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "./host";
import { heredoc, renderScript, sh } from "./render/shell";

export const UNIT_STYLES = ["quadlet", "service"] as const;
export type UnitStyle = (typeof UNIT_STYLES)[number];

export interface UnitPaths {
  /** The unit file, relative to the user's home. */
  unitFile: string;
  /** The environment file, relative to the user's home. */
  envFile: string;
  /** The systemd service name (Quadlet generates NAME.service from NAME.container). */
  service: string;
}

export function unitPaths(style: UnitStyle, name: string): UnitPaths {
  return {
    unitFile: style === "quadlet" ? `.config/containers/systemd/${name}.container` : `.config/systemd/user/${name}.service`,
    envFile: `.config/gitea-homelab/${name}.env`,
    service: `${name}.service`,
  };
}

export interface SystemdUserUnitArgs {
  host: Host;
  user: pulumi.Input<string>;
  name: pulumi.Input<string>;
  style: pulumi.Input<UnitStyle>;
  /** The unit file's content. */
  content: pulumi.Input<string>;
  /** Content of the unit's environment file (secret), delivered through stdin. */
  environment?: pulumi.Input<string>;
}

export interface UnitScriptSpec {
  user: string;
  name: string;
  style: UnitStyle;
  content: string;
  hasEnvironment: boolean;
}

export function renderUnitInstallScript(spec: UnitScriptSpec): string {
  const paths = unitPaths(spec.style, spec.name);
  const unit = heredoc(spec.content);
  return renderScript(
    {
      purpose: `User unit ${paths.service} of ${spec.user} (${spec.style}).`,
      vars: { user: spec.user, style: spec.style, service: paths.service, unit_file: paths.unitFile, env_file: spec.hasEnvironment ? paths.envFile : "" },
    },
    sh`
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
as_user "$user" mkdir -p "$home/$(dirname "$unit_file")" "$home/$(dirname "$env_file")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

cat >"$tmp" ${unit.open}
${unit.body}
install_file "$tmp" "$home/$unit_file" 644 "$user" "$group"

if [[ -n $env_file ]]; then
  # The environment file holds secrets: it arrives on stdin and is only readable by the user.
  (umask 077 && cat >"$tmp")
  install_file "$tmp" "$home/$env_file" 600 "$user" "$group"
fi

userctl() { systemctl --user -M "$user@" "$@"; }
userctl daemon-reload
if [[ $style == quadlet ]]; then
  # (systemctl cat refuses to work with -M, so ask for the load state)
  [[ $(userctl show --property=LoadState --value "$service") == loaded ]] ||
    die "Quadlet generated no $service from ~$user/$unit_file; run '/usr/libexec/podman/quadlet -dryrun -user' as $user to see why"
else
  userctl enable --quiet "$service"
fi

converge_service userctl "$service"
`,
  );
}

export function renderUnitRemoveScript(spec: Omit<UnitScriptSpec, "content" | "hasEnvironment">): string {
  const paths = unitPaths(spec.style, spec.name);
  return renderScript(
    { purpose: `Remove user unit ${paths.service} of ${spec.user}.`, vars: { user: spec.user, style: spec.style, service: paths.service, unit_file: paths.unitFile, env_file: paths.envFile } },
    sh`
if ! id -u "$user" >/dev/null 2>&1; then
  echo "user $user is gone, and its units with it"
  exit 0
fi
home=$(getent passwd "$user" | cut -d: -f6)
userctl() { systemctl --user -M "$user@" "$@"; }
# Without linger the user's manager may not run; then there is nothing to stop or reload.
manager_running=false
userctl list-units >/dev/null 2>&1 && manager_running=true
if [[ $manager_running == true ]]; then
  userctl stop "$service" 2>/dev/null || true
  [[ $style == quadlet ]] || userctl disable --quiet "$service" 2>/dev/null || true
fi
rm -f "$home/$unit_file" "$home/$env_file"
[[ $manager_running == false ]] || userctl daemon-reload
echo "$service removed"
`,
  );
}

export class SystemdUserUnit extends pulumi.ComponentResource {
  readonly service: pulumi.Output<string>;
  readonly installed: command.remote.Command;

  constructor(name: string, args: SystemdUserUnitArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:SystemdUserUnit", name, {}, opts);
    const hasEnvironment = args.environment !== undefined;
    const spec = pulumi.all([args.user, args.name, args.style, args.content]).apply(([user, unitName, style, content]): UnitScriptSpec => ({ user, name: unitName, style, content, hasEnvironment }));
    this.service = spec.apply((s) => unitPaths(s.style, s.name).service);
    this.installed = args.host.run(
      `${name}-unit`,
      {
        create: spec.apply(renderUnitInstallScript),
        delete: spec.apply(renderUnitRemoveScript),
        stdin: args.environment,
        secret: hasEnvironment,
        triggers: [spec.apply((s) => `${s.user}/${s.style}/${s.name}`)],
      },
      // Both styles make the same service and share the env file: remove the old before the new.
      { parent: this, dependsOn: opts?.dependsOn, deleteBeforeReplace: true },
    );
    this.registerOutputs({ service: this.service });
  }
}
