/**
 * Host: the one SSH connection to a machine, the preflight that checks it before anything
 * changes, and `run`, through which every component sends its scripts (as root, via sudo -n
 * when the SSH user is not root).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConfigError } from "../stacks/config";
import { driftMarker, Facts, parseMarker, parseProbeSession, ProbeSection, ProbeSession, renderLocalProbeCommand, renderProbeRemoteCommand, renderProbeSessionScript, renderStateRecordScript, recordDir } from "./render/probe";
import { asRootCommand, Bash, renderScript, sh, shq } from "./render/shell";
import { detectPlatform, HOST_FACTS_KEY, HOST_FACTS_SH, Platform, REQUIRED_TOOLS } from "./platform";

export interface HostArgs {
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** OpenSSH private key (secret); when unset the SSH agent is used. */
  privateKey?: pulumi.Input<string | undefined>;
  /** Pinned host key, "ssh-ed25519 AAAA…". */
  hostKey?: pulumi.Input<string | undefined>;
  /** Fail the preflight unless firewalld is installed and running ("auto": unless on Alpine). */
  requireFirewalld: pulumi.Input<boolean | "auto">;
  /** Fail the preflight unless Podman is new enough for Quadlet (4.4). */
  requireQuadlet: pulumi.Input<boolean>;
  /** What to tell the user when systemd is not PID 1 (default: check the host setting). */
  systemdAdvice?: pulumi.Input<string>;
}

export interface HostCommandSpec {
  /** Converge script, run on create and on every input change. */
  create: pulumi.Input<string>;
  /** Script run on destroy (the stored copy runs, with the stored connection). */
  delete?: pulumi.Input<string>;
  /** Data for the script's stdin; made secret when `secret` is set. */
  stdin?: pulumi.Input<string>;
  /** The command handles a secret: no logs, stdout/stderr secret in state. */
  secret?: boolean;
  /** A change of these replaces the command: the old delete runs, then the new create. */
  triggers?: pulumi.Input<any[]>;
  /**
   * What the host's probe found different from what this command converges (empty: in sync).
   * Folded into the command so drift shows as an update in preview and `up` repairs it.
   */
  drift?: pulumi.Input<string[]>;
}

export interface HostCommandOptions {
  parent: pulumi.Resource;
  /** Usually the owning component's own `dependsOn`, passed down. */
  dependsOn?: pulumi.ResourceOptions["dependsOn"];
  retainOnDelete?: boolean;
  /** On replacement run the old delete before the new create (for things that share a name). */
  deleteBeforeReplace?: boolean;
}

/** Shell line that fails clearly unless firewalld runs; the preflight and every port script use it. */
export function firewalldRunningCheck(): Bash {
  const advice = "start it with 'systemctl enable --now firewalld' or set gitea-homelab:firewall to none";
  return sh`state=$(firewall-cmd --state 2>&1) || die "firewalld is not running ($state): "${shq(advice)}`;
}

export interface PreflightOptions {
  /** Fail unless firewalld runs; "auto": on every OS but Alpine, which does not ship it. */
  requireFirewalld: boolean | "auto";
  requireQuadlet: boolean;
  systemdAdvice?: string;
}

export const DEFAULT_SYSTEMD_ADVICE = "gitea-homelab needs a host whose PID 1 is systemd, or an Alpine host with OpenRC (check gitea-homelab:host)";

/**
 * Checks first (init system, OS, firewalld, Podman version), then installs what is missing.
 * On systemd hosts it makes network-online.target active and wanted at boot, without which
 * every start of a rootless Quadlet unit waits 90 s (podman issue 22197). On Alpine (OpenRC)
 * it enables the cgroups service and loads the tun and fuse modules, now and at boot.
 */
export function renderHostPreflightScript(opts: PreflightOptions): string {
  const tools = REQUIRED_TOOLS.map((t) => `${t.command}:${t.fedora}:${t.debian}:${t.alpine}`).join(" ");
  return renderScript(
    {
      purpose: "Host preflight: check the host, then install Podman and its helpers.",
      vars: { require_firewalld: opts.requireFirewalld, require_quadlet: opts.requireQuadlet, tools, systemd_advice: opts.systemdAdvice ?? DEFAULT_SYSTEMD_ADVICE },
    },
    sh`
[[ -r /etc/os-release ]] || die "/etc/os-release is missing; cannot tell which OS this is"
# shellcheck source=/dev/null
os_id=$(. /etc/os-release && echo "\${ID:-unknown}")
# shellcheck source=/dev/null
os_like=$(. /etc/os-release && echo "\${ID_LIKE:-}")
case " $os_id $os_like " in
  *" alpine "*) pkg_family=alpine ;;
  *" fedora "* | *" rhel "*) pkg_family=fedora ;;
  *" debian "* | *" ubuntu "*) pkg_family=debian ;;
  *) die "unsupported OS '$os_id': gitea-homelab supports Fedora (dnf), Debian (apt) and Alpine (apk) hosts" ;;
esac
if [[ $pkg_family == alpine ]]; then
  command -v openrc-run >/dev/null || [[ -x /sbin/openrc-run ]] || die "this Alpine host has no OpenRC (openrc-run); gitea-homelab runs Gitea as an OpenRC service there"
else
  [[ -d /run/systemd/system ]] || die "systemd is not running as PID 1 on this host: $systemd_advice"
fi

if [[ $require_firewalld == auto ]]; then
  # Alpine ships no firewalld: gitea-homelab:firewall auto leaves its firewall alone.
  if [[ $pkg_family == alpine ]]; then require_firewalld=false; else require_firewalld=true; fi
fi
if [[ $require_firewalld == true ]]; then
  command -v firewall-cmd >/dev/null || die "firewalld is not installed; install it or set gitea-homelab:firewall to none"
  ${firewalldRunningCheck()}
fi

podman_too_old() {
  local version
  version=$(podman --version | awk '{print $3}')
  [[ $(printf '%s\n' 4.4.0 "$version" | sort -V | head -n1) != 4.4.0 ]]
}
if [[ $pkg_family != alpine && $require_quadlet == true ]] && command -v podman >/dev/null && podman_too_old; then
  die "Podman $(podman --version | awk '{print $3}') has no Quadlet (needs 4.4+); set gitea-homelab:unitStyle to service"
fi

missing=()
for tool in $tools; do
  IFS=: read -r cmd fedora_pkg debian_pkg alpine_pkg <<<"$tool"
  case $pkg_family in
    fedora) pkg=$fedora_pkg ;;
    debian) pkg=$debian_pkg ;;
    alpine) pkg=$alpine_pkg ;;
  esac
  if [[ -n $pkg ]] && ! command -v "$cmd" >/dev/null; then missing+=("$pkg"); fi
done
if ((\${#missing[@]} > 0)); then
  echo "installing: \${missing[*]}"
  case $pkg_family in
    fedora) dnf install -y "\${missing[@]}" ;;
    debian)
      DEBIAN_FRONTEND=noninteractive apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "\${missing[@]}"
      ;;
    alpine) apk add --update-cache --quiet --no-progress "\${missing[@]}" ;;
  esac
fi

if [[ $pkg_family == alpine ]]; then
  # Rootless Podman needs the cgroups service, and tun (pasta) and fuse (fuse-overlayfs).
  rc-update add cgroups >/dev/null
  rc-service cgroups status >/dev/null 2>&1 || rc-service cgroups start
  for module in tun fuse; do
    modprobe "$module" 2>/dev/null || [[ -d /sys/module/$module ]] || die "cannot load the $module kernel module"
    grep -qxF "$module" /etc/modules 2>/dev/null || echo "$module" >>/etc/modules
  done
elif ! systemctl is-active --quiet network-online.target; then
  echo "network-online.target was inactive: making it wanted at boot and starting it"
  systemctl add-wants multi-user.target network-online.target
  timeout 300 systemctl start network-online.target
fi
echo "host ready: $os_id, $(podman --version)"
`,
  );
}

/** Run last on destroy: this stack's drift records go with the resources they describe. */
export function renderHostCleanupScript(records: string): string {
  return renderScript({ purpose: "Remove this stack's drift records from this host.", vars: { records } }, sh`
rm -rf "$records"
rmdir --ignore-fail-on-non-empty "$(dirname "$records")" 2>/dev/null || true
echo "drift records removed"
`);
}

function withDependency(first: pulumi.Resource, rest: pulumi.ResourceOptions["dependsOn"]): pulumi.ResourceOptions["dependsOn"] {
  if (rest === undefined) return [first];
  return pulumi.output(rest).apply((r) => [first, ...(Array.isArray(r) ? r : [r])]);
}

export class Host extends pulumi.ComponentResource {
  /** The connection, one secret value with every field set (pulumi-command issue 447). */
  readonly connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;
  readonly preflight: command.remote.Command;
  /** The host's OS family and init system, as the probe session found them. */
  readonly platform: pulumi.Output<Platform>;
  /** The probe session's result, once `inspect()` ran; every command waits for it. */
  private readonly session: pulumi.Output<ProbeSession>;
  private startSession!: (session: pulumi.Output<ProbeSession>) => void;
  private readonly probes: Array<pulumi.Output<ProbeSection>> = [];
  private readonly recordNames: string[] = [];
  private inspected = false;
  /** Where this stack's commands record their drift markers on the host. */
  private readonly records = recordDir(pulumi.getStack());

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:Host", name, {}, opts);
    this.connection = pulumi.secret(
      pulumi.all([args.host, args.port, args.user, args.privateKey, args.hostKey]).apply(([host, port, user, privateKey, hostKey]) => ({
        host,
        port,
        user,
        privateKey: privateKey || undefined,
        hostKey: hostKey || undefined,
        dialErrorLimit: 10,
        perDialTimeout: 15,
      })),
    );
    this.session = pulumi
      .output(new Promise<pulumi.Output<ProbeSession>>((resolve) => (this.startSession = resolve)))
      .apply((session) => session);
    this.platform = this.session.apply((s) => detectPlatform(s.sections[HOST_FACTS_KEY]));
    const preflightScript = pulumi
      .all([args.requireFirewalld, args.requireQuadlet, args.systemdAdvice])
      .apply(([requireFirewalld, requireQuadlet, systemdAdvice]) => renderHostPreflightScript({ requireFirewalld, requireQuadlet, systemdAdvice }));
    this.preflight = this.command(`${name}-preflight`, { create: preflightScript, delete: renderHostCleanupScript(this.records) }, { parent: this }, false);
    this.registerOutputs({ connection: this.connection });
  }

  /**
   * Adds a read-only probe to this host's session; its facts, or undefined when the probe's
   * output was missing or cut short. Call before `inspect()`.
   */
  probe(section: pulumi.Input<ProbeSection>): pulumi.Output<Facts | undefined> {
    if (this.inspected) throw new Error("Host.probe() called after Host.inspect()");
    const s = pulumi.output(section);
    const key = s.apply((x) => x.key);
    this.probes.push(s);
    return pulumi.all([this.session, key]).apply(([session, k]) => session.sections[k]);
  }

  /**
   * Runs every probe added so far in one SSH session (a `command:local:run` invoke, so it runs on
   * every preview and up) with the commands' own connection. Call once, after all components
   * of this host exist: until then their commands wait.
   */
  inspect(): pulumi.Output<ProbeSession> {
    if (this.inspected) throw new Error("Host.inspect() called twice");
    this.inspected = true;
    const sections = pulumi.all(this.probes);
    const remote = sections.apply((s) => renderProbeRemoteCommand(renderProbeSessionScript(s, this.recordNames, this.records), HOST_FACTS_KEY, HOST_FACTS_SH));
    // The connection is secret (it holds the key); the command line and the result are not.
    const conn = pulumi.unsecret(this.connection);
    const result = command.local.runOutput(
      {
        command: pulumi.all([conn, remote]).apply(([c, r]) =>
          renderLocalProbeCommand({ host: c.host as string, port: c.port as number, user: c.user as string, hostKey: c.hostKey as string | undefined }, r),
        ),
        stdin: pulumi.secret(conn.apply((c) => (c.privateKey as string | undefined) ?? "")),
        logging: "none",
      },
      { parent: this },
    );
    const session = pulumi.unsecret(
      pulumi.all([result, conn]).apply(([r, c]) => {
        const parsed = parseProbeSession(r.stdout, `${c.user}@${c.host}:${c.port}`);
        if (!parsed.ok) throw new ConfigError([parsed.problem!]);
        return parsed;
      }),
    );
    this.startSession(session);
    return this.session;
  }

  /** Runs a script on this host as root, after the preflight. */
  run(name: string, spec: HostCommandSpec, opts: HostCommandOptions): command.remote.Command {
    return this.command(name, spec, opts, true);
  }

  private command(name: string, spec: HostCommandSpec, opts: HostCommandOptions, afterPreflight: boolean): command.remote.Command {
    const wrap = (script: pulumi.Input<string>) => pulumi.output(script).apply((s) => asRootCommand(s));
    let create: pulumi.Output<string>;
    if (spec.drift === undefined) {
      // Nothing runs on the host before the probe session succeeded.
      create = pulumi.all([spec.create, this.session]).apply(([s]) => asRootCommand(s));
    } else {
      if (this.inspected) throw new Error(`Host.run(${name}) with drift called after Host.inspect()`);
      this.recordNames.push(name);
      // Drift descriptions name paths and states, never secrets: keep them readable in the diff.
      create = pulumi.all([spec.create, pulumi.unsecret(pulumi.output(spec.drift)), this.session]).apply(([s, drift, session]) => {
        const recorded = session.records[name];
        const marker = driftMarker(drift, recorded);
        // A first converge (nothing recorded) is not drift; later differences are, and are said.
        if (drift.length > 0 && parseMarker(recorded) !== undefined) {
          pulumi.log.warn(`${name}: drift on the host: ${marker.text}; pulumi up converges it`, this);
        }
        return asRootCommand(s, renderStateRecordScript(this.records, name, marker));
      });
    }
    return new command.remote.Command(
      name,
      {
        connection: this.connection,
        create,
        delete: spec.delete === undefined ? undefined : wrap(spec.delete),
        stdin: spec.stdin === undefined ? undefined : spec.secret ? pulumi.secret(spec.stdin) : spec.stdin,
        triggers: spec.triggers,
        logging: spec.secret ? "none" : undefined,
      },
      {
        parent: opts.parent,
        dependsOn: afterPreflight ? withDependency(this.preflight, opts.dependsOn) : opts.dependsOn,
        retainOnDelete: opts.retainOnDelete,
        deleteBeforeReplace: opts.deleteBeforeReplace,
        additionalSecretOutputs: spec.secret ? ["stdout", "stderr"] : undefined,
      },
    );
  }
}
