/**
 * The engine stand-in. The Pulumi CLI itself builds here from its Go module, but the Go module
 * registry serves neither its Node.js language host nor the `command` and `random` provider
 * plugins, so a real `pulumi up` cannot run (see the README's Tests section). This runs the real
 * program through Pulumi's own runtime under `setMocks` and plays the engine's part for what the
 * program registers, with the semantics of @pulumi/command 1.2.1:
 *   - a new remote.Command runs `create`;
 *   - a change of `triggers` replaces it: create the new, then run the old stored `delete` at
 *     the end of the run (or delete first with `deleteBeforeReplace`);
 *   - a change of any other input (minus `ignoreChanges`) runs `update`, or `create` when empty;
 *   - no change runs nothing;
 *   - resources gone from the program, and everything on `destroy`, run their stored `delete`
 *     in reverse order, except `retainOnDelete` ones, which are only forgotten;
 *   - every script, `delete` included, gets the stored `stdin` (the provider's CommandOutputs.run).
 * A StackReference reads the outputs of the named stack's last successful up (another Engine).
 * Resource options are not in `newResource`'s arguments, so a MockMonitor subclass reads them
 * from the registration request. State is a JSON file; random values are made once and kept.
 * Invokes run for real: `command:local:run` executes its command with /bin/sh -c and its stdin,
 * failing on a non-zero exit as the provider does, so the drift probe runs exactly as users
 * run it. `preview` runs the program in dry-run mode and reports what `up` would do, with the
 * drift each update folds in. Each run reports every command executed, every SSH session
 * (the engine's own and those the probe opened) and its duration, bytes sent, and warnings.
 */
import { spawn } from "child_process";
import { randomBytes, randomInt } from "crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { foldedMarker } from "../../../components/host/checkedCommand";
import { unwrapSecrets } from "../../helpers/pulumiMocks";
import { Connection, sshRun } from "./ssh";

// eslint-disable-next-line @typescript-eslint/no-require-imports -- @internal functions, absent from the typings
const settings: { waitForRPCs(): Promise<void> } = require("@pulumi/pulumi/runtime/settings");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const state: { getStore(): { settings: { monitor: unknown } } } = require("@pulumi/pulumi/runtime/state");

const COMMAND = "command:remote:Command";

interface ResourceOptions {
  parent: string;
  dependencies: string[];
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  additionalSecretOutputs: string[];
}

interface StoredResource extends ResourceOptions {
  key: string;
  type: string;
  name: string;
  inputs: Record<string, any>;
  outputs: Record<string, any>;
}

interface EngineState {
  /** In creation order, which respects dependencies; deletes go in reverse. */
  resources: StoredResource[];
  /** The stack's outputs after the last successful up, resolved, for StackReferences to it. */
  outputs?: Record<string, unknown>;
}

export type Operation = "create" | "update" | "replace" | "delete";

export interface ExecutedCommand {
  resource: string;
  operation: Operation;
  exitCode: number;
  ms: number;
  bytesSent: number;
  /** When it started, in ms since the run started. */
  startedMs: number;
  /**
   * The full command line run over SSH and the stdin it got (undefined: none). They may hold
   * secrets, so they are non-enumerable: JSON.stringify, util.inspect and test diffs leave
   * them out; read them by name (the bench replays them).
   */
  readonly commandLine: string;
  readonly stdin: string | undefined;
}

/** A `command:local:run` invoke (the drift probe's SSH session), timed. */
export interface LocalRun {
  ms: number;
  /** SSH sessions it reported running. */
  sshSessions: number;
}

export interface RunReport {
  wallMs: number;
  commands: ExecutedCommand[];
  sshSessions: number;
  bytesSent: number;
  outputs: Record<string, unknown>;
  /** `command:local:run` invokes executed. */
  localRuns: number;
  /** Each `command:local:run` invoke with its wall time, in the order they finished. */
  localRunTimes: LocalRun[];
  /** What the program logged as warnings (pulumi.log.warn). */
  warnings: string[];
  /** `outputs`, resolved. */
  resolvedOutputs?: Record<string, unknown>;
  /** Date.now() when the run started (commands' startedMs count from it). */
  startedAt?: number;
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
  /** What `up` would do; resources without a change are left out. */
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

function keyOf(type: string, name: string): string {
  return `${type}::${name}`;
}

function isSecretOutput(r: Pick<StoredResource, "additionalSecretOutputs" | "inputs">, field: "stdout" | "stderr"): boolean {
  return r.inputs.logging === "none" || r.additionalSecretOutputs.includes(field);
}

/** Inputs compared for an update: everything but triggers and ignored keys. */
function comparable(inputs: Record<string, any>, ignore: string[]): string {
  const copy = { ...inputs };
  delete copy.triggers;
  for (const k of ignore) delete copy[k];
  return JSON.stringify(copy, Object.keys(copy).sort());
}

/** The drift marker folded into a command line, if any. */
export function driftOf(createLine: string | undefined): { check: number; text: string } | undefined {
  return foldedMarker(createLine ?? "");
}

function changedKeys(old: Record<string, any>, next: Record<string, any>): string[] {
  return [...new Set([...Object.keys(old), ...Object.keys(next)])].filter((k) => JSON.stringify(old[k] ?? null) !== JSON.stringify(next[k] ?? null)).sort();
}

/** `command:local:run` as the provider runs it: /bin/sh -c, stdin, error on a non-zero exit, one trailing newline trimmed. */
async function localRun(inputs: Record<string, any>): Promise<Record<string, any>> {
  const interpreter: string[] = inputs.interpreter?.length ? inputs.interpreter : ["/bin/sh", "-c"];
  return new Promise((resolve, reject) => {
    const child = spawn(interpreter[0], [...interpreter.slice(1), inputs.command], {
      cwd: inputs.dir || process.cwd(),
      env: { ...process.env, ...(inputs.environment ?? {}) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`exit status ${code}: running ${JSON.stringify(inputs.command.slice(0, 80))}:\n${stdout}${stderr}`));
      else resolve({ ...inputs, stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") });
    });
    child.stdin.end(inputs.stdin || "");
  });
}

function randomOutputs(type: string, inputs: Record<string, any>): Record<string, any> | undefined {
  if (type === "random:index/randomPassword:RandomPassword" || type === "random:index/randomString:RandomString") {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return { ...inputs, result: Array.from({ length: inputs.length }, () => alphabet[randomInt(alphabet.length)]).join("") };
  }
  if (type === "random:index/randomBytes:RandomBytes") {
    const bytes = randomBytes(inputs.length);
    return { ...inputs, base64: bytes.toString("base64"), hex: bytes.toString("hex") };
  }
  return undefined;
}

class OptionsMonitor extends MockMonitor {
  constructor(
    mocks: pulumi.runtime.Mocks,
    private readonly options: Map<string, ResourceOptions>,
  ) {
    super(mocks);
  }

  async registerResource(req: any, callback: (err: any, res: any) => void): Promise<void> {
    this.options.set(keyOf(req.getType(), req.getName()), {
      parent: req.getParent(),
      dependencies: req.getDependenciesList(),
      retainOnDelete: req.getRetainondelete?.() ?? false,
      deleteBeforeReplace: req.getDeletebeforereplace?.() ?? false,
      ignoreChanges: req.getIgnorechangesList?.() ?? [],
      additionalSecretOutputs: req.getAdditionalsecretoutputsList?.() ?? [],
    });
    return super.registerResource(req, callback);
  }
}

export interface EngineOptions {
  /** The program to run instead of program.ts's `main` (the bench's empty program). */
  program?: () => Promise<Record<string, unknown>>;
}

export class Engine {
  constructor(
    private readonly stateFile: string,
    private readonly log: (line: string) => void = () => undefined,
    /** Other stacks by name, for the program's StackReferences (their last up's outputs). */
    private readonly references: Record<string, Engine> = {},
    private readonly options: EngineOptions = {},
  ) {}

  /** The outputs of this stack's last successful up. */
  lastOutputs(): Record<string, unknown> {
    return this.load().outputs ?? {};
  }

  private load(): EngineState {
    return existsSync(this.stateFile) ? JSON.parse(readFileSync(this.stateFile, "utf8")) : { resources: [] };
  }

  private save(s: EngineState): void {
    writeFileSync(this.stateFile, JSON.stringify(s, null, 2), { mode: 0o600 });
  }

  /** The stored state of one resource, for tests. */
  stored(name: string): StoredResource | undefined {
    return this.load().resources.find((r) => r.name === name);
  }

  private async exec(report: RunReport, r: Pick<StoredResource, "name" | "inputs" | "additionalSecretOutputs">, operation: Operation, script: string) {
    // The provider runs every script, delete included, with the stored stdin (CommandOutputs.run).
    const startedMs = Date.now() - report.startedAt!;
    const result = await sshRun(r.inputs.connection as Connection, script, r.inputs.stdin);
    const executed = { resource: r.name, operation, exitCode: result.code, ms: result.ms, bytesSent: result.bytesSent, startedMs } as ExecutedCommand;
    Object.defineProperty(executed, "commandLine", { value: script, enumerable: false });
    Object.defineProperty(executed, "stdin", { value: r.inputs.stdin as string | undefined, enumerable: false });
    report.commands.push(executed);
    report.sshSessions += 1;
    report.bytesSent += result.bytesSent;
    const shown = (field: "stdout" | "stderr") => (isSecretOutput(r as StoredResource, field) ? "    [secret]\n" : indent(result[field]));
    this.log(`${operation} ${r.name}: exit ${result.code} in ${result.ms} ms\n${shown("stdout")}${shown("stderr")}`.trimEnd());
    return result;
  }

  /** Invokes as the engine would run them; local runs for real. */
  private async invoke(report: RunReport, args: pulumi.runtime.MockCallArgs): Promise<Record<string, any>> {
    if (args.token !== "command:local:run") return args.inputs;
    report.localRuns += 1;
    const started = Date.now();
    const result = await localRun(unwrapSecrets(args.inputs));
    // The probe says on a line of its own that it ran its SSH session.
    const sessions = (result.stdout.match(/^@@gitea-homelab-session exit /gm) ?? []).length;
    report.sshSessions += sessions;
    report.localRunTimes.push({ ms: Date.now() - started, sshSessions: sessions });
    return result;
  }

  /**
   * Runs the program under mocks with `config`; `newResource` decides what each registration
   * does. Returns the program's error message, if it failed.
   */
  private async runProgram(
    report: RunReport,
    config: Record<string, string>,
    stack: string,
    preview: boolean,
    newResource: (args: pulumi.runtime.MockResourceArgs, opts: ResourceOptions) => Promise<{ id: string; state: Record<string, any> }>,
  ): Promise<string | undefined> {
    const options = new Map<string, ResourceOptions>();
    const mocks: pulumi.runtime.Mocks = {
      newResource: async (args) => {
        if (args.type === "pulumi:pulumi:StackReference") {
          // Read, not managed: the referenced stack's outputs as its state holds them.
          const referenced = String(args.inputs.name).split("/").pop()!;
          const other = this.references[referenced];
          if (!other) throw new Error(`engine stand-in: no stack named ${referenced} to reference`);
          return { id: String(args.inputs.name), state: { name: args.inputs.name, outputs: other.lastOutputs(), secretOutputNames: [] } };
        }
        return newResource(args, options.get(keyOf(args.type, args.name))!);
      },
      call: (args) => this.invoke(report, args),
    };
    await pulumi.runtime.setMocks(mocks, "gitea-homelab", stack, preview);
    state.getStore().settings.monitor = new OptionsMonitor(mocks, options);
    pulumi.runtime.setAllConfig(
      Object.fromEntries(Object.entries(config).map(([k, v]) => [`gitea-homelab:${k}`, v])),
      ["gitea-homelab:privateKey", "gitea-homelab:adminPassword", "gitea-homelab:registrationToken"],
    );
    const warn = console.warn;
    const errors: string[] = [];
    const onRejection = (err: unknown) => errors.push(err instanceof Error ? err.message : String(err));
    console.warn = (...args: unknown[]) => {
      report.warnings.push(args.map(String).join(" ").replace(/^warning: \[runtime\] /, ""));
    };
    process.on("unhandledRejection", onRejection);
    let failure: string | undefined;
    try {
      const main = this.options.program ?? (await import("../../../program")).main;
      report.outputs = await main();
      // An output that fails (e.g. one read from a probe session that was refused) fails the run,
      // as the CLI would; apply() alone would wait for it forever.
      report.resolvedOutputs = Object.fromEntries(
        await Promise.all(Object.entries(report.outputs).map(async ([k, o]) => [k, await (pulumi.output(o as any) as unknown as { promise(): Promise<unknown> }).promise()] as [string, unknown])),
      );
      await settings.waitForRPCs();
    } catch (err) {
      failure = (err as Error).message;
    } finally {
      console.warn = warn;
      // Give rejected registrations a turn to report, as the language host would.
      await new Promise((r) => setTimeout(r, 50));
      process.off("unhandledRejection", onRejection);
    }
    return failure ?? errors[0];
  }

  /** `pulumi preview`: what `up` would do with `config`, running only the invokes. */
  async preview(config: Record<string, string>, stack = "server"): Promise<PreviewReport> {
    const started = Date.now();
    const report: PreviewReport = { wallMs: 0, commands: [], sshSessions: 0, bytesSent: 0, outputs: {}, localRuns: 0, localRunTimes: [], warnings: [], steps: [], startedAt: started };
    const previous = this.load();
    const seen = new Set<string>();
    const failure = await this.runProgram(report, config, stack, true, async (args, opts) => {
      const key = keyOf(args.type, args.name);
      seen.add(key);
      const inputs = unwrapSecrets(args.inputs);
      const old = previous.resources.find((r) => r.key === key);
      if (!old) {
        report.steps.push({ resource: args.name, operation: "create", changed: [] });
        return { id: `${args.name}-id`, state: randomOutputs(args.type, inputs) ?? inputs };
      }
      if (args.type === COMMAND) {
        const triggersChanged = JSON.stringify(old.inputs.triggers ?? null) !== JSON.stringify(inputs.triggers ?? null);
        const updated = comparable(old.inputs, opts.ignoreChanges) !== comparable(inputs, opts.ignoreChanges);
        if (triggersChanged || updated) {
          const drift = driftOf(inputs.create);
          const oldDrift = driftOf(old.inputs.create);
          report.steps.push({
            resource: args.name,
            operation: triggersChanged ? "replace" : "update",
            changed: changedKeys(old.inputs, inputs),
            drift: drift && drift.check !== oldDrift?.check ? drift.text : undefined,
          });
        }
      }
      return { id: `${args.name}-id`, state: old.outputs };
    });
    for (const r of previous.resources) if (!seen.has(r.key)) report.steps.push({ resource: r.name, operation: "delete", changed: [] });
    report.wallMs = Date.now() - started;
    if (failure) throw new DeploymentError(failure, report);
    return report;
  }

  /** `pulumi up`: runs the program with `config` and converges. */
  async up(config: Record<string, string>, stack = "server"): Promise<RunReport> {
    const started = Date.now();
    const report: RunReport = { wallMs: 0, commands: [], sshSessions: 0, bytesSent: 0, outputs: {}, localRuns: 0, localRunTimes: [], warnings: [], startedAt: started };
    const previous = this.load();
    const next: StoredResource[] = [];
    const pendingDeletes: StoredResource[] = [];
    let failure: string | undefined;

    const programFailure = await this.runProgram(report, config, stack, false, async (args, opts) => {
      const key = keyOf(args.type, args.name);
      const inputs = unwrapSecrets(args.inputs);
      const old = previous.resources.find((r) => r.key === key);
      const record = (outputs: Record<string, any>) => {
        next.push({ key, type: args.type, name: args.name, inputs, outputs, ...opts });
        return { id: `${args.name}-id`, state: outputs };
      };

      const random = randomOutputs(args.type, inputs);
      if (random) return record(old && comparable(old.inputs, []) === comparable(inputs, []) ? old.outputs : random);
      if (args.type !== COMMAND) return record(inputs);
      if (failure) {
        // The engine stops at the first failure: later commands keep their old state.
        if (old) next.push(old);
        return { id: `${args.name}-id`, state: old?.outputs ?? inputs };
      }

      const resource = { name: args.name, inputs, additionalSecretOutputs: opts.additionalSecretOutputs };
      let operation: Operation | undefined;
      if (!old) operation = "create";
      else if (JSON.stringify(old.inputs.triggers ?? null) !== JSON.stringify(inputs.triggers ?? null)) operation = "replace";
      else if (comparable(old.inputs, opts.ignoreChanges) !== comparable(inputs, opts.ignoreChanges)) operation = "update";
      if (!operation) return record(old!.outputs);

      if (operation === "replace" && old) {
        if (opts.deleteBeforeReplace) {
          if (old.inputs.delete) await this.exec(report, old, "delete", old.inputs.delete);
        } else {
          pendingDeletes.push(old);
        }
      }
      const script = operation === "update" && inputs.update ? inputs.update : inputs.create;
      const result = await this.exec(report, resource, operation, script);
      if (result.code !== 0) {
        failure = `${args.name}: ${operation} failed (exit ${result.code}): ${isSecretOutput({ ...resource, inputs } as StoredResource, "stderr") ? "[secret]" : result.stderr.trim().split("\n").slice(-5).join(" | ")}`;
        if (old && operation === "update") next.push(old);
        return { id: `${args.name}-id`, state: inputs };
      }
      return record({ ...inputs, stdout: result.stdout, stderr: result.stderr });
    });
    failure ??= programFailure;

    if (!failure) {
      // Replaced resources' old halves, then resources the program no longer has, newest first.
      const seen = new Set(next.map((r) => r.key));
      const gone = previous.resources.filter((r) => !seen.has(r.key)).reverse();
      for (const r of [...pendingDeletes, ...gone]) {
        if (r.type !== COMMAND || r.retainOnDelete || !r.inputs.delete) continue;
        const result = await this.exec(report, r, "delete", r.inputs.delete);
        if (result.code !== 0) {
          failure = `${r.name}: delete failed (exit ${result.code})`;
          next.push(r);
          break;
        }
      }
    } else {
      // Keep what a failed run did not touch.
      const seen = new Set(next.map((r) => r.key));
      next.push(...previous.resources.filter((r) => !seen.has(r.key)));
    }
    this.save({ resources: next, outputs: failure ? previous.outputs : report.resolvedOutputs });
    report.wallMs = Date.now() - started;
    if (failure) throw new DeploymentError(failure, report);
    return report;
  }

  /** `pulumi destroy`: stored deletes, newest first; retained resources are only forgotten. */
  async destroy(): Promise<RunReport> {
    const started = Date.now();
    const report: RunReport = { wallMs: 0, commands: [], sshSessions: 0, bytesSent: 0, outputs: {}, localRuns: 0, localRunTimes: [], warnings: [], startedAt: started };
    const remaining = [...this.load().resources];
    while (remaining.length > 0) {
      const r = remaining[remaining.length - 1];
      if (r.type === COMMAND && !r.retainOnDelete && r.inputs.delete) {
        const result = await this.exec(report, r, "delete", r.inputs.delete);
        if (result.code !== 0) {
          this.save({ resources: remaining });
          throw new DeploymentError(`${r.name}: delete failed (exit ${result.code})`, report);
        }
      }
      remaining.pop();
    }
    this.save({ resources: [] });
    report.wallMs = Date.now() - started;
    return report;
  }
}

function indent(text: string): string {
  return text.trim() === "" ? "" : `${text.trimEnd().replace(/^/gm, "    ")}\n`;
}

/** An engine with fresh state in `stateFile` that echoes its log and keeps it in `log`. */
export function freshEngine(stateFile: string, log: string[], references: Record<string, Engine> = {}): Engine {
  rmSync(stateFile, { force: true });
  return new Engine(
    stateFile,
    (line) => {
      log.push(line);
      process.stdout.write(`${line}\n`);
    },
    references,
  );
}
