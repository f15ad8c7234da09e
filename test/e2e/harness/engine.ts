/**
 * The engine stand-in. The Pulumi CLI cannot run here, so this runs the real program through
 * Pulumi's own runtime under `setMocks` and plays the engine's part for what the program
 * registers, with the semantics of @pulumi/command 1.2.1:
 *   - a new remote.Command runs `create`;
 *   - a change of `triggers` replaces it: create the new, then run the old stored `delete` at
 *     the end of the run (or delete first with `deleteBeforeReplace`);
 *   - a change of any other input (minus `ignoreChanges`) runs `update`, or `create` when empty;
 *   - no change runs nothing;
 *   - resources gone from the program, and everything on `destroy`, run their stored `delete`
 *     in reverse order, except `retainOnDelete` ones, which are only forgotten.
 * Resource options are not in `newResource`'s arguments, so a MockMonitor subclass reads them
 * from the registration request. State is a JSON file; random values are made once and kept.
 * Each run reports every command executed, every SSH session and its duration, bytes sent.
 */
import { randomBytes, randomInt } from "crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
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
}

export type Operation = "create" | "update" | "replace" | "delete";

export interface ExecutedCommand {
  resource: string;
  operation: Operation;
  exitCode: number;
  ms: number;
  bytesSent: number;
}

export interface RunReport {
  wallMs: number;
  commands: ExecutedCommand[];
  sshSessions: number;
  bytesSent: number;
  outputs: Record<string, unknown>;
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

export class Engine {
  constructor(
    private readonly stateFile: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

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
    const result = await sshRun(r.inputs.connection as Connection, script, operation === "delete" ? undefined : r.inputs.stdin);
    report.commands.push({ resource: r.name, operation, exitCode: result.code, ms: result.ms, bytesSent: result.bytesSent });
    report.sshSessions += 1;
    report.bytesSent += result.bytesSent;
    const shown = (field: "stdout" | "stderr") => (isSecretOutput(r as StoredResource, field) ? "    [secret]\n" : indent(result[field]));
    this.log(`${operation} ${r.name}: exit ${result.code} in ${result.ms} ms\n${shown("stdout")}${shown("stderr")}`.trimEnd());
    return result;
  }

  /** `pulumi up`: runs the program with `config` and converges. */
  async up(config: Record<string, string>, stack = "server"): Promise<RunReport> {
    const started = Date.now();
    const report: RunReport = { wallMs: 0, commands: [], sshSessions: 0, bytesSent: 0, outputs: {} };
    const previous = this.load();
    const next: StoredResource[] = [];
    const pendingDeletes: StoredResource[] = [];
    const options = new Map<string, ResourceOptions>();
    let failure: string | undefined;

    const mocks: pulumi.runtime.Mocks = {
      newResource: async (args) => {
        const key = keyOf(args.type, args.name);
        const inputs = unwrapSecrets(args.inputs);
        const opts = options.get(key)!;
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
      },
      call: (args) => args.inputs,
    };

    await pulumi.runtime.setMocks(mocks, "gitea-homelab", stack, false);
    state.getStore().settings.monitor = new OptionsMonitor(mocks, options);
    pulumi.runtime.setAllConfig(
      Object.fromEntries(Object.entries(config).map(([k, v]) => [`gitea-homelab:${k}`, v])),
      ["gitea-homelab:privateKey", "gitea-homelab:adminPassword"],
    );
    try {
      const { main } = await import("../../../program");
      report.outputs = await main();
      await Promise.all(Object.values(report.outputs).map((o) => new Promise((resolve) => pulumi.output(o as any).apply(resolve))));
    } catch (err) {
      failure ??= (err as Error).message;
    }
    await settings.waitForRPCs();

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
    this.save({ resources: next });
    report.wallMs = Date.now() - started;
    if (failure) throw new DeploymentError(failure, report);
    return report;
  }

  /** `pulumi destroy`: stored deletes, newest first; retained resources are only forgotten. */
  async destroy(): Promise<RunReport> {
    const started = Date.now();
    const report: RunReport = { wallMs: 0, commands: [], sshSessions: 0, bytesSent: 0, outputs: {} };
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
export function freshEngine(stateFile: string, log: string[]): Engine {
  rmSync(stateFile, { force: true });
  return new Engine(stateFile, (line) => {
    log.push(line);
    process.stdout.write(`${line}\n`);
  });
}
