/**
 * Host: the one SSH connection to a machine, the platform decided once from what the probe
 * session found there, the preflight that checks the host before anything changes, and the
 * commands every component sends through it (as root, via sudo -n when the SSH user is not
 * root). A command that converges part of the host declares its check (`converge`); the host
 * probes all of them in one SSH session and folds what differs into each command.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "crypto";
import { asRootCommand, RootInvocation } from "../render/shell";
import { appliedDigest, foldDrift, HostCheck, markerLabel, parseRecord, renderStateRecordScript } from "./checkedCommand";
import { ConfigError } from "./configError";
import { ConfiguredUnitStyle, decidePlatform, FirewallChoice, HOST_FACTS_KEY, HOST_FACTS_SH, Platform } from "./platform";
import { renderHostCleanupScript, renderHostPreflightScript } from "./preflight";
import { Facts, NamedProbe, parseProbeSession, ProbeBody, ProbeSession, recordDir, renderLocalProbeCommand, renderProbeRemoteCommand, renderProbeSessionScript } from "./probeSession";

export interface HostArgs {
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** OpenSSH private key (secret); when unset the SSH agent is used. */
  privateKey?: pulumi.Input<string | undefined>;
  /** Pinned host key, "ssh-ed25519 AAAA…". */
  hostKey?: pulumi.Input<string | undefined>;
  /** The firewall the stack chose; "auto": firewalld on every OS but Alpine. */
  firewall: pulumi.Input<FirewallChoice>;
  /** How containers run on systemd hosts (default "service", which needs no Quadlet). */
  unitStyle?: pulumi.Input<ConfiguredUnitStyle>;
  /** Refuse an OpenRC host (the runner needs systemd). */
  requireSystemd?: boolean;
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
  /**
   * A change of these replaces the command: the old delete runs, then the new create. A secret
   * value is kept as its digest (see `plainTriggers`).
   */
  triggers?: pulumi.Input<string>[];
}

export interface HostConvergeSpec extends HostCommandSpec {
  /** How to read what this command converges on the host, and how to compare it. */
  check: pulumi.Input<HostCheck>;
  /**
   * The check's probe, when the check itself waits for values a fresh preview does not know (a
   * digest of a generated secret): the one probe session must never wait for them, or a fresh
   * preview would not look at the host at all (no credentials, OS or drift checked).
   */
  probe?: pulumi.Input<ProbeBody>;
}

/**
 * A setting whose value must hold on the host before anything runs (restoreFrom names a backup):
 * a read-only probe in the one session, and the problems its facts show, each naming the key.
 */
export interface HostVerification {
  probe: ProbeBody;
  problems: (facts: Facts | undefined) => string[];
}

export interface HostCommandOptions {
  parent: pulumi.Resource;
  /** Usually the owning component's own `dependsOn`, passed down. */
  dependsOn?: pulumi.ResourceOptions["dependsOn"];
  retainOnDelete?: boolean;
  /** On replacement run the old delete before the new create (for things that share a name). */
  deleteBeforeReplace?: boolean;
}

/**
 * Triggers as one plain list that holds no secret. The command provider hands a secret that is
 * unknown during preview back without its value when it sits inside a list, and the engine then
 * fails the preview ("malformed secret: missing value"); a secret trigger would also be kept in
 * plain state. So a secret trigger becomes its digest (a digest of a secret that is high-entropy,
 * as every one here is, reveals nothing) and the list is never secret.
 */
export function plainTriggers(triggers: pulumi.Input<string>[]): pulumi.Output<string[]> {
  const plain = triggers.map((trigger) => {
    const value = pulumi.output(trigger);
    return pulumi
      .all([value, pulumi.output(pulumi.isSecret(value))])
      .apply(([v, secret]) => (secret ? `sha256:${createHash("sha256").update(v).digest("hex")}` : v));
  });
  return pulumi.unsecret(pulumi.all(plain));
}

function withDependency(first: pulumi.Resource, rest: pulumi.ResourceOptions["dependsOn"]): pulumi.ResourceOptions["dependsOn"] {
  if (rest === undefined) return [first];
  return pulumi.output(rest).apply((r) => [first, ...(Array.isArray(r) ? r : [r])]);
}

export class Host extends pulumi.ComponentResource {
  /** The connection, one secret value with every field set (pulumi-command issue 447). */
  readonly connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;
  /** Every platform decision (OS family, package manager, init, unit style, firewall). */
  readonly platform: pulumi.Output<Platform>;
  /** The unit style the stack chose for systemd hosts (probes are rendered before the platform is decided). */
  readonly systemdUnitStyle: pulumi.Output<ConfiguredUnitStyle>;
  readonly preflight: command.remote.Command;
  /** The probe session's result; every command waits for it. */
  private readonly session: pulumi.Output<ProbeSession>;
  private readonly probes: Array<pulumi.Output<NamedProbe>> = [];
  private readonly verifications: Array<pulumi.Output<{ name: string; problems: HostVerification["problems"] }>> = [];
  private sessionStarted = false;
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
    this.systemdUnitStyle = pulumi.output(args.unitStyle ?? "service");
    let start!: (session: pulumi.Output<ProbeSession>) => void;
    this.session = pulumi.output(new Promise<pulumi.Output<ProbeSession>>((resolve) => (start = resolve))).apply((s) => s);
    // Components declare their checks while the stack is built, in the same turn of the event
    // loop as this constructor; the one probe session starts right after.
    setImmediate(() => start(this.startSession()));
    // Every command waits for the platform: a verification that fails stops them all.
    this.platform = pulumi
      .all([this.session, this.systemdUnitStyle, args.firewall, args.systemdAdvice, pulumi.output(this.session.apply(() => pulumi.all(this.verifications)))])
      .apply(([session, unitStyle, firewall, systemdAdvice, verifications]) => {
        const platform = decidePlatform(session.sections[HOST_FACTS_KEY], { unitStyle, firewall, systemdAdvice, requireSystemd: args.requireSystemd });
        const problems = verifications.flatMap((v) => v.problems(session.sections[v.name]));
        if (problems.length > 0) throw new ConfigError(problems);
        return platform;
      });
    const cleanup = renderHostCleanupScript(this.records);
    this.preflight = this.command(
      `${name}-preflight`,
      { delete: cleanup },
      this.platform.apply((p) => asRootCommand(renderHostPreflightScript(p), { onDelete: cleanup })),
      { parent: this },
      false,
    );
    this.registerOutputs({ connection: this.connection });
  }

  /** Runs every declared probe in one SSH session (an invoke: it runs on every preview and up). */
  private startSession(): pulumi.Output<ProbeSession> {
    this.sessionStarted = true;
    const remote = pulumi.all(this.probes).apply((p) => renderProbeRemoteCommand(renderProbeSessionScript(p, this.records), HOST_FACTS_KEY, HOST_FACTS_SH));
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
    return pulumi.unsecret(
      pulumi.all([result, conn]).apply(([r, c]) => {
        const parsed = parseProbeSession(r.stdout, `${c.user}@${c.host}:${c.port}`);
        if (!parsed.ok) throw new ConfigError([parsed.problem!]);
        return parsed;
      }),
    );
  }

  /**
   * A command that converges part of this host, with its check: a host that differs from what
   * the command last applied shows as an update in preview, and `up` repairs it.
   */
  converge(name: string, spec: HostConvergeSpec, opts: HostCommandOptions): command.remote.Command {
    if (this.sessionStarted) throw new Error(`Host.converge(${name}) after the probe session started: declare components while the stack is built, never inside apply()`);
    const check = pulumi.output(spec.check);
    this.probes.push(spec.probe === undefined ? check.apply((c) => ({ name, probe: c.probe })) : pulumi.output(spec.probe).apply((probe) => ({ name, probe })));
    // A digest of the stdin only, so the folded record carries no secret.
    const applied = pulumi.unsecret(pulumi.all([spec.create, spec.stdin]).apply(([script, stdin]) => appliedDigest(script, stdin)));
    // Comparisons may read digests of secret files; their descriptions hold no secret.
    const fold = pulumi.unsecret(
      pulumi.all([check, this.session, this.platform, applied]).apply(([c, session, platform, digest]) =>
        foldDrift(c.compare(session.sections[name], platform), parseRecord(session.records[name]), digest),
      ),
    );
    const invocation = pulumi.all([spec.create, spec.stdin, spec.delete, fold, applied]).apply(([script, payload, onDelete, f, digest]) => {
      if (f.hostDrifted) pulumi.log.warn(`${name}: drift on the host: ${f.marker.text}; pulumi up converges it`, this);
      return asRootCommand(script, { after: renderStateRecordScript(this.records, name, f.marker, digest), payload, label: markerLabel(f.marker), onDelete });
    });
    return this.command(name, spec, invocation, opts, true);
  }

  /**
   * Checks a setting on the host in the probe session: its problems fail every preview and up
   * before anything runs there (a ConfigError naming the key), rather than a command midway.
   */
  verify(name: string, verification: pulumi.Input<HostVerification>): void {
    if (this.sessionStarted) throw new Error(`Host.verify(${name}) after the probe session started: declare components while the stack is built, never inside apply()`);
    const v = pulumi.output(verification);
    this.probes.push(v.apply((x) => ({ name, probe: x.probe })));
    this.verifications.push(v.apply((x) => ({ name, problems: x.problems })));
  }

  /** What the probe of the checked command NAME printed in this run's session (undefined when nothing). */
  probed(name: string): pulumi.Output<Facts | undefined> {
    return this.session.apply((session) => session.sections[name]);
  }

  /** Runs a script on this host as root, after the preflight; nothing of it is checked for drift. */
  run(name: string, spec: HostCommandSpec, opts: HostCommandOptions): command.remote.Command {
    // Nothing runs on the host before the probe session succeeded and the platform is decided.
    const invocation = pulumi.all([spec.create, spec.stdin, spec.delete, this.platform]).apply(([script, payload, onDelete]) => asRootCommand(script, { payload, onDelete }));
    return this.command(name, spec, invocation, opts, true);
  }

  /**
   * The command resource: the short command lines, and stdin carrying the scripts (then the
   * payload), secret whenever the payload is. The provider runs a delete with the stored stdin,
   * so the delete script is in it too, chosen by the delete's command line.
   */
  private command(name: string, spec: Omit<HostCommandSpec, "create" | "stdin">, invocation: pulumi.Output<RootInvocation>, opts: HostCommandOptions, afterPreflight: boolean): command.remote.Command {
    const stdin = invocation.apply((i) => i.stdin);
    return new command.remote.Command(
      name,
      {
        connection: this.connection,
        // The launcher and the drift marker: never a secret, even when the payload is.
        create: pulumi.unsecret(invocation.apply((i) => i.command)),
        // Only its presence: the delete script itself travels in stdin.
        delete: spec.delete === undefined ? undefined : pulumi.unsecret(invocation.apply((i) => i.deleteCommand!)),
        stdin: spec.secret ? pulumi.secret(stdin) : stdin,
        triggers: spec.triggers === undefined ? undefined : plainTriggers(spec.triggers),
        logging: spec.secret ? "none" : undefined,
        // No script reads its previous output, and sshd refuses the variables by default
        // (AcceptEnv), which the provider reports as a warning on every update and delete.
        addPreviousOutputInEnv: false,
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
