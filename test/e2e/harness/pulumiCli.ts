/**
 * Drives the real Pulumi CLI as a user does, with the README's commands: a file backend
 * (`pulumi login file://…`, here PULUMI_BACKEND_URL), `pulumi stack init`, `pulumi config set
 * [--secret]`, `pulumi preview`, `pulumi up --yes`, `pulumi destroy --yes`, `pulumi stack output`.
 * The CLI and its Node.js language host are built from their Go modules (tools/build.sh pulumi);
 * the `command` and `random` plugins are the real ones when the developer has them, else our
 * test doubles (test/e2e/doubles/), and the suite says which.
 *
 * What a run did comes from the CLI's own engine events (`--json`: `up` and `destroy` print their
 * preview's summary, then stream the events; `preview` streams them with
 * PULUMI_ENABLE_STREAMING_JSON_PREVIEW): each step of a `command:remote:Command` with its
 * operation, the warnings the program logged, the errors.
 * The CLI runs in a scratch copy of the project (links to this repository's program), so the
 * stacks' `Pulumi.<stack>.yaml` files it writes never touch the repository's examples.
 */
import { ChildProcess, spawn } from "child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "fs";
import { join } from "path";
import { foldedMarker } from "../../../components/host/checkedCommand";
import { installProviderDoubles, PluginKind } from "../doubles/install";

const COMMAND = "command:remote:Command";
/** Config keys whose values are secrets: set with --secret, through stdin. */
const SECRET_KEYS = new Set(["privateKey", "adminPassword", "registrationToken", "tlsKey", "offsitePassword", "offsiteSshKey"]);
/** PEM files the README sets through stdin (`pulumi config set KEY < file`), in plain text. */
const FILE_KEYS = new Set(["tlsCertificate", "caCertificate", "acmeCaRoot"]);
/** Gitea settings that hold a password (`gitea.mailer.PASSWD`) and the off-site credentials are set with --secret too. */
const isSecretKey = (key: string) => SECRET_KEYS.has(key) || /^gitea\..*\.PASSWD$/.test(key) || key.startsWith("offsiteEnvironment.");

export type Operation = "create" | "update" | "replace" | "delete";

/** A remote command the engine ran (or, in a preview, would run). */
export interface ExecutedCommand {
  resource: string;
  operation: Operation;
  /** 0: the step completed (the engine stops at a failed one, which is in the error). */
  exitCode: number;
}

export interface RunReport {
  wallMs: number;
  commands: ExecutedCommand[];
  /** SSH sessions the host's sshd accepted during the run (when the stack can count them). */
  sshSessions: number;
  /** Warnings the program and the providers logged. */
  warnings: string[];
  /**
   * Every message the CLI printed for the run ("severity: text"), Node's own warnings on the
   * program's stderr included: all but debug lines and the progress display's ephemeral ones.
   */
  diagnostics: string[];
  /** Each command's last progress line (the real provider streams a command's output there). */
  progress: Record<string, string>;
  /** The stack's outputs after the run, secrets shown. */
  outputs: Record<string, unknown>;
}

export interface PlannedStep {
  resource: string;
  operation: Operation;
  /** Inputs that differ from the state (for updates and replaces). */
  changed: string[];
  /** The drift folded into the command, when its drift marker changed. */
  drift?: string;
}

export interface PreviewReport extends RunReport {
  /** What `up` would do to remote commands; unchanged ones are left out. */
  steps: PlannedStep[];
}

export class DeploymentError extends Error {
  constructor(
    message: string,
    readonly report: RunReport,
  ) {
    super(message);
  }
}

/** Where the CLI runs: its binaries, its home (plugins), the backend and the project. */
export interface CliWorkspace {
  /** Directory holding `pulumi` and `pulumi-language-nodejs`. */
  bin: string;
  /** PULUMI_HOME: plugins (real or doubles) are installed there. */
  home: string;
  /** The file backend's directory. */
  backend: string;
  /** Where event logs go. */
  scratch: string;
  /** The scratch project the CLI runs in (`linkedProject`). */
  project: string;
  /** Counts the SSH sessions the host accepted so far, for the reports. */
  sshSessions?: () => Promise<number>;
}

interface EngineEvent {
  sequence: number;
  diagnosticEvent?: { urn?: string; message: string; severity: string; prefix?: string; ephemeral?: boolean };
  resourcePreEvent?: { metadata: StepMetadata; planning?: boolean };
  resOutputsEvent?: { metadata: StepMetadata; planning?: boolean };
  resOpFailedEvent?: { metadata: StepMetadata };
  summaryEvent?: unknown;
}

interface StepMetadata {
  op: string;
  urn: string;
  type: string;
  old?: { inputs?: Record<string, any> };
  new?: { inputs?: Record<string, any> };
  diffs?: string[];
}

/** What of this repository a Pulumi project needs: the program, its settings, its packages. */
const PROJECT_ENTRIES = ["Pulumi.yaml", "index.ts", "program.ts", "components", "stacks", "package.json", "tsconfig.json", "node_modules"];

/** A project directory at `dir` whose program is this repository's, by links; returns `dir`. */
export function linkedProject(repo: string, dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of PROJECT_ENTRIES) symlinkSync(join(repo, entry), join(dir, entry));
  return dir;
}

function nameOf(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/**
 * The remote commands a run's events show. A replacement's new command is "replace"; the
 * replaced one's delete, and a removed one's, is "delete" only where it has a delete script
 * (the provider runs nothing otherwise).
 */
export function commandSteps(events: EngineEvent[], planning: boolean): Array<PlannedStep & { failed: boolean }> {
  const steps: Array<PlannedStep & { failed: boolean }> = [];
  for (const e of events) {
    const done = planning ? e.resourcePreEvent : e.resOutputsEvent;
    const failed = !planning && e.resOpFailedEvent !== undefined;
    const m = done?.metadata ?? (failed ? e.resOpFailedEvent!.metadata : undefined);
    if (!m || m.type !== COMMAND) continue;
    // `up` and `destroy` stream their preview's events first, marked as planning.
    if (!planning && done?.planning) continue;
    const operation: Operation | undefined = (
      { create: "create", update: "update", "create-replacement": "replace", delete: "delete", "delete-replaced": "delete" } as Record<string, Operation>
    )[m.op];
    if (!operation) continue;
    if (operation === "delete" && !m.old?.inputs?.delete) continue;
    const next = foldedMarker(String(m.new?.inputs?.create ?? ""));
    const before = foldedMarker(String(m.old?.inputs?.create ?? ""));
    steps.push({
      resource: nameOf(m.urn),
      operation,
      changed: operation === "update" || operation === "replace" ? [...(m.diffs ?? [])].sort() : [],
      drift: (operation === "update" || operation === "replace") && next && next.check !== before?.check ? next.text : undefined,
      failed,
    });
  }
  return steps;
}

/** The engine events a `--json` run printed: one JSON object a line, after any summary document. */
export function parseEvents(stdout: string): EngineEvent[] {
  return stdout.split("\n").flatMap((line) => {
    if (!line.startsWith('{"sequence"')) return [];
    try {
      return [JSON.parse(line) as EngineEvent];
    } catch {
      return [];
    }
  });
}

/** What a user would have seen of a run: its events without the engine's debug messages. */
function shownToUser(events: EngineEvent[]): string {
  return events
    .filter((e) => e.diagnosticEvent?.severity !== "debug")
    .map((e) => JSON.stringify(e))
    .join("\n");
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One stack of this project in the workspace, with its config in a file of its own. */
export class CliStack {
  private config: Record<string, string> = {};
  private outputs: Record<string, unknown> = {};
  private runs = 0;

  constructor(
    private readonly ws: CliWorkspace,
    readonly name: string,
    /** Everything the CLI printed, for tests that look for leaked secrets. */
    private readonly log: string[],
  ) {}

  /** Variables set (a value) or removed (undefined) for the CLI's runs, e.g. SSH_AUTH_SOCK. */
  envOverrides: Record<string, string | undefined> = {};

  env(): NodeJS.ProcessEnv {
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const [name, value] of Object.entries(this.envOverrides)) {
      if (value === undefined) delete base[name];
      else base[name] = value;
    }
    return {
      ...base,
      PATH: `${this.ws.bin}:${process.env.PATH}`,
      PULUMI_HOME: this.ws.home,
      PULUMI_BACKEND_URL: `file://${this.ws.backend}`,
      PULUMI_CONFIG_PASSPHRASE: "gitea-homelab-e2e",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      // Plugins come from PULUMI_HOME only: the real ones or our doubles, as the suite said.
      PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
      PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true",
      NO_COLOR: "1",
    };
  }

  /**
   * Runs `pulumi ARGS` in the project; `stdin` for the one value a command reads. What it
   * prints goes to the log, except what `shown` leaves out (secrets shown on request, debug).
   */
  cli(args: string[], stdin = "", shown: (stdout: string) => string = (o) => o): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(join(this.ws.bin, "pulumi"), [...args, "--non-interactive", "--color", "never"], { cwd: this.ws.project, env: this.env(), stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => {
        this.log.push(`$ pulumi ${args.join(" ")}`, shown(stdout), stderr);
        resolve({ code: code ?? 1, stdout, stderr });
      });
      child.stdin.end(stdin);
    });
  }

  private async must(args: string[], stdin = "", shown?: (stdout: string) => string): Promise<CliResult> {
    const r = await this.cli(args, stdin, shown);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${r.code}): ${r.stderr || r.stdout}`);
    return r;
  }

  /** `pulumi stack init` (a stack left from an earlier run is removed first: fresh state). */
  async init(): Promise<this> {
    mkdirSync(this.ws.scratch, { recursive: true });
    await this.cli(["stack", "rm", this.name, "--force", "--yes"]);
    await this.must(["stack", "init", this.name]);
    this.config = {};
    this.outputs = {};
    return this;
  }

  /** Loses the stack's whole state, as a user who lost it would; the hosts keep what they have. */
  async forgetState(): Promise<void> {
    await this.init();
  }

  /**
   * `pulumi config set` for what changed since the last run, `config rm` for what went. A key
   * with a dot is a path into an object (`gitea.mailer.SMTP_ADDR`: `--path`), as the README
   * tells users to set Gitea's settings.
   */
  private async setConfig(config: Record<string, string>): Promise<void> {
    const gone = Object.keys(this.config).filter((k) => !(k in config));
    const flat = (k: string) => !k.includes(".");
    if (gone.some(flat)) await this.must(["config", "rm-all", "--stack", this.name, ...gone.filter(flat).map((k) => `gitea-homelab:${k}`)]);
    for (const k of gone.filter((k) => !flat(k))) await this.must(["config", "rm", "--path", "--stack", this.name, `gitea-homelab:${k}`]);
    const plain = Object.entries(config).filter(([k, v]) => !isSecretKey(k) && !FILE_KEYS.has(k) && this.config[k] !== v);
    if (plain.some(([k]) => flat(k))) {
      await this.must(["config", "set-all", "--stack", this.name, ...plain.filter(([k]) => flat(k)).flatMap(([k, v]) => ["--plaintext", `gitea-homelab:${k}=${v}`])]);
    }
    for (const [k, v] of plain.filter(([k]) => !flat(k))) await this.must(["config", "set", "--path", "--stack", this.name, `gitea-homelab:${k}`, v]);
    for (const [k, v] of Object.entries(config).filter(([k, v]) => FILE_KEYS.has(k) && this.config[k] !== v)) {
      await this.must(["config", "set", "--stack", this.name, `gitea-homelab:${k}`], v);
    }
    // Secrets go through stdin, as the README tells users, never on the command line.
    for (const [k, v] of Object.entries(config).filter(([k, v]) => isSecretKey(k) && this.config[k] !== v)) {
      await this.must(["config", "set", "--secret", ...(flat(k) ? [] : ["--path"]), "--stack", this.name, `gitea-homelab:${k}`], v);
    }
    this.config = { ...config };
  }

  private async run(verb: "up" | "preview" | "destroy", config?: Record<string, string>): Promise<{ report: RunReport; events: EngineEvent[]; failure?: string }> {
    if (config) await this.setConfig(config);
    const sessionsBefore = await this.ws.sshSessions?.();
    const started = Date.now();
    const args = [verb, "--stack", this.name, "--json"];
    if (verb !== "preview") args.push("--yes");
    const result = await this.cli(args, "", (stdout) => shownToUser(parseEvents(stdout)));
    const events = parseEvents(result.stdout);
    writeFileSync(join(this.ws.scratch, `${this.name}-${++this.runs}-${verb}.events.jsonl`), shownToUser(events));
    const wallMs = Date.now() - started;
    const sessionsAfter = await this.ws.sshSessions?.();
    const diagnostics = events.flatMap((e) => (e.diagnosticEvent ? [e.diagnosticEvent] : []));
    const warnings = diagnostics.filter((d) => d.severity === "warning").map((d) => d.message.replace(/\s+$/, ""));
    const progress: Record<string, string> = {};
    for (const d of diagnostics) if (d.ephemeral && d.urn && d.message.trim() !== "") progress[nameOf(d.urn)] = d.message.trim();
    const report: RunReport = {
      wallMs,
      commands: commandSteps(events, verb === "preview").map((s) => ({ resource: s.resource, operation: s.operation, exitCode: s.failed ? 1 : 0 })),
      // The session that counts them is itself one.
      sshSessions: sessionsBefore === undefined || sessionsAfter === undefined ? 0 : sessionsAfter - sessionsBefore - 1,
      warnings,
      diagnostics: diagnostics.filter((d) => d.severity !== "debug" && !d.ephemeral).map((d) => `${d.severity}: ${d.message.replace(/\s+$/, "")}`),
      progress,
      outputs: this.outputs,
    };
    if (result.code === 0) return { report, events };
    const errors = diagnostics.filter((d) => d.severity === "error").map((d) => `${d.urn ? `${nameOf(d.urn)}: ` : ""}${d.message.trim()}`);
    return { report, events, failure: errors.length > 0 ? errors.join("\n") : `${result.stderr}${result.stdout}`.trim() };
  }

  private async readOutputs(): Promise<Record<string, unknown>> {
    const r = await this.must(["stack", "output", "--json", "--show-secrets", "--stack", this.name], "", () => "(outputs, secrets shown: not logged)");
    this.outputs = JSON.parse(r.stdout || "{}");
    return this.outputs;
  }

  /**
   * `pulumi up --yes` with `config`, started in a process group of its own and not waited for:
   * a test kills the whole group, as a closed laptop or a double Ctrl-C would.
   */
  async startUp(config: Record<string, string>): Promise<ChildProcess> {
    await this.setConfig(config);
    const args = ["up", "--yes", "--stack", this.name, "--non-interactive", "--color", "never"];
    this.log.push(`$ pulumi ${args.join(" ")} (in the background)`);
    return spawn(join(this.ws.bin, "pulumi"), args, { cwd: this.ws.project, env: this.env(), stdio: "ignore", detached: true });
  }

  /** `pulumi up --yes` with `config`. */
  async up(config: Record<string, string>): Promise<RunReport> {
    const { report, failure } = await this.run("up", config);
    report.outputs = await this.readOutputs().catch(() => this.outputs);
    if (failure) throw new DeploymentError(failure, report);
    return report;
  }

  /** `pulumi preview` with `config`: what `up` would do to remote commands. */
  async preview(config: Record<string, string>): Promise<PreviewReport> {
    const { report, events, failure } = await this.run("preview", config);
    const steps = commandSteps(events, true).map(({ failed: _failed, ...s }) => s);
    const preview: PreviewReport = { ...report, steps };
    if (failure) throw new DeploymentError(failure, preview);
    return preview;
  }

  /** `pulumi destroy --yes`. */
  async destroy(): Promise<RunReport> {
    const { report, failure } = await this.run("destroy");
    this.outputs = {};
    if (failure) throw new DeploymentError(failure, report);
    return report;
  }

  /** The outputs of the last up, secrets shown (`pulumi stack output --json --show-secrets`). */
  lastOutputs(): Record<string, unknown> {
    return this.outputs;
  }

  /** This stack's name as a StackReference names it in a file backend. */
  get qualifiedName(): string {
    return `organization/gitea-homelab/${this.name}`;
  }
}

export interface Workspace extends CliWorkspace {
  plugins: Record<"command" | "random", PluginKind>;
}

/** The plugin versions the program's SDKs ask for. */
export function requiredPluginVersions(repo: string): Record<"command" | "random", string> {
  const version = (pkg: string) => JSON.parse(readFileSync(join(repo, "node_modules", pkg, "package.json"), "utf8")).version as string;
  return { command: version("@pulumi/command"), random: version("@pulumi/random") };
}

/** A developer's real plugin binary at that version, if their PULUMI_HOME has it. */
function realPlugin(name: string, version: string): string | undefined {
  const home = process.env.GITEA_HOMELAB_REAL_PLUGINS_HOME ?? process.env.PULUMI_HOME ?? join(process.env.HOME ?? "/root", ".pulumi");
  const binary = join(home, "plugins", `resource-${name}-v${version}`, `pulumi-resource-${name}`);
  return existsSync(binary) ? binary : undefined;
}

/**
 * The workspace of one VM run, shared by the suite files it runs: the CLI from tools/build.sh,
 * a PULUMI_HOME with the plugins (the developer's real ones at the versions the SDKs ask for,
 * else our test doubles), a file backend and the scratch project. Made once per run directory.
 */
export async function openWorkspace(rundir: string, opts: { suite?: string; sshSessions?: () => Promise<number> } = {}): Promise<Workspace> {
  const ws = await makeWorkspace(rundir, opts.sshSessions);
  // Which plugins ran is part of every suite's result.
  process.stdout.write(`${opts.suite ?? "e2e"}: Pulumi CLI ${readFileSync(join(ws.bin, "pulumi.version"), "utf8").trim()}, command plugin: ${ws.plugins.command}, random plugin: ${ws.plugins.random}\n`);
  return ws;
}

async function makeWorkspace(rundir: string, sshSessions?: () => Promise<number>): Promise<Workspace> {
  const repo = join(__dirname, "..", "..", "..");
  const bin = process.env.GITEA_HOMELAB_TOOLS_BIN ?? join(repo, ".tools", "bin");
  for (const program of ["pulumi", "pulumi-language-nodejs"]) {
    if (!existsSync(join(bin, program))) throw new Error(`${join(bin, program)} is missing: run tools/build.sh pulumi (test/e2e/with-vm.sh does)`);
  }
  const ws: CliWorkspace = {
    bin,
    home: join(rundir, "pulumi-home"),
    backend: join(rundir, "pulumi-state"),
    scratch: join(rundir, "pulumi-runs"),
    project: join(rundir, "pulumi-project"),
    sshSessions,
  };
  const marker = join(rundir, "pulumi-workspace.json");
  if (existsSync(marker)) return { ...ws, plugins: JSON.parse(readFileSync(marker, "utf8")) };

  for (const dir of [ws.home, ws.backend, ws.scratch]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  linkedProject(repo, ws.project);
  const versions = requiredPluginVersions(repo);
  const setup = new CliStack(ws, "setup", []);
  for (const name of ["command", "random"] as const) {
    const real = realPlugin(name, versions[name]);
    if (!real) continue;
    const r = await setup.cli(["plugin", "install", "resource", name, versions[name], "--file", real]);
    if (r.code !== 0) throw new Error(`installing the real ${name} plugin from ${real}: ${r.stderr}`);
  }
  // The rest: our test doubles, named as such.
  const { plugins } = await installProviderDoubles(join(bin, "pulumi"), setup.env(), join(rundir, "pulumi-doubles"));
  writeFileSync(marker, JSON.stringify(plugins));
  return { ...ws, plugins };
}
