/**
 * Runs the program under Pulumi's mocks and records every registered resource with what the
 * engine would see: parent, dependencies, resource options and which inputs are secret. The SDK's
 * `newResource` mock hook gets none of those, so the recorder subclasses its MockMonitor.
 */
import { readFileSync } from "fs";
import { join } from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { parseRootInvocation } from "../../components/render/shell";
// Internal modules of the SDK, the same ones `setMocks` uses.
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
// eslint-disable-next-line @typescript-eslint/no-require-imports -- @internal functions, absent from the typings
const settings: { waitForRPCs(): Promise<void> } = require("@pulumi/pulumi/runtime/settings");
const state: { getStore(): { settings: { monitor: unknown } } } = require("@pulumi/pulumi/runtime/state");

/** How the SDK marks a secret and an unknown value on the wire (runtime/rpc). */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const UNKNOWN_ON_THE_WIRE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  parent: string;
  dependencies: string[];
  inputs: Record<string, any>;
  /** The inputs as the engine receives them: secrets wrapped, unknowns as the SDK's sentinel. */
  wireInputs: Record<string, any>;
  /** Inputs that are secret or hold a secret somewhere inside. */
  secretInputs: string[];
  /** A remote command's script, payload and delete script, read back from its stdin. */
  script?: string;
  payload?: string;
  deleteScript?: string;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
}

export function isSecretValue(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

function containsSecret(v: unknown): boolean {
  if (isSecretValue(v)) return true;
  return typeof v === "object" && v !== null && Object.values(v).some(containsSecret);
}

/** Fake provider results: random resources get fixed values recognisable in assertions. */
export function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
  switch (type) {
    case "random:index/randomPassword:RandomPassword":
      return { ...inputs, result: `generated-${name}-${"x".repeat(Math.max(0, (inputs.length ?? 16) - name.length - 10))}` };
    case "random:index/randomBytes:RandomBytes":
      return { ...inputs, base64: "a+b/c+d/e+f/g+h/i+j/k+l/m+n/o+p/q+r/s+t/u+v=", hex: "00" };
    case "command:remote:Command":
      return { ...inputs, stdout: "", stderr: "" };
    default:
      return inputs;
  }
}

/** Mock inputs keep secrets wrapped; tests compare plain values and check secretness separately. */
export function unwrapSecrets(v: any): any {
  if (isSecretValue(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}

class RecordingMonitor extends MockMonitor {
  constructor(
    mocks: pulumi.runtime.Mocks,
    private readonly record: RecordedResource[],
  ) {
    super(mocks);
  }

  async registerResource(req: any, callback: (err: any, res: any) => void): Promise<void> {
    const raw = req.getObject()?.toJavaScript() ?? {};
    const deps: string[] = req.getDependenciesList();
    this.record.push({
      type: req.getType(),
      name: req.getName(),
      urn: "",
      parent: req.getParent(),
      dependencies: deps,
      inputs: {},
      wireInputs: raw,
      secretInputs: Object.keys(raw).filter((k) => containsSecret(raw[k])),
      retainOnDelete: req.getRetainondelete?.() ?? false,
      deleteBeforeReplace: req.getDeletebeforereplace?.() ?? false,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList?.() ?? [],
    });
    const entry = this.record[this.record.length - 1];
    return super.registerResource(req, (err: any, res: any) => {
      if (res) entry.urn = res.getUrn();
      callback(err, res);
    });
  }
}

/** The host facts section of a probe session on a host of this OS and init system. */
export function hostFactsSection(osId: string, init: string, osLike = ""): string {
  return ["@@gitea-homelab-probe begin @host", `os_id=${osId}`, `os_like=${osLike}`, `init=${init}`, "@@gitea-homelab-probe end @host"].join("\n");
}

/** What a probe session of a bare Fedora host prints: SSH worked, nothing of ours was found. */
export const EMPTY_PROBE_SESSION = `${hostFactsSection("fedora", "systemd")}\n@@gitea-homelab-session exit 0`;

export interface RecordedInvoke {
  token: string;
  inputs: Record<string, any>;
}

export interface ProgramRun {
  resources: RecordedResource[];
  /** What the program logged with pulumi.log.warn, in order (the CLI shows each as a warning). */
  warnings: string[];
  invokes: RecordedInvoke[];
  outputs: Record<string, unknown>;
  /** Resolves an output (or plain value) of the program. */
  value<T>(o: unknown): Promise<T>;
  isSecret(o: unknown): Promise<boolean>;
  byName(name: string): RecordedResource;
  ofType(type: string): RecordedResource[];
}

/**
 * The config the real CLI hands a program before any stack setting: every `default:` of
 * Pulumi.yaml, as a string (numbers and booleans as text, objects as JSON), exactly as if the
 * stack had set it (DESIGN.md, seen with CLI 3.276). The SDK's mocks alone apply none of them.
 */
export function projectDefaults(): Record<string, string> {
  const project = parse(readFileSync(join(__dirname, "..", "..", "Pulumi.yaml"), "utf8")) as { config: Record<string, { default?: unknown }> };
  const defaults: Record<string, string> = {};
  for (const [key, declared] of Object.entries(project.config)) {
    if (!("default" in declared)) continue;
    const value = declared.default;
    defaults[key] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return defaults;
}

/**
 * Sets mocks and config, then runs `load` (which must `await import()` the code under test and
 * build the stack) and waits for every registration.
 */
export async function runWithMocks(
  config: Record<string, string>,
  load: () => Promise<Record<string, unknown>>,
  opts: {
    stack?: string;
    secretKeys?: string[];
    preview?: boolean;
    /** Outputs of referenced stacks, by stack name; `secret` lists the secret ones. */
    stackReferences?: Record<string, { outputs: Record<string, unknown>; secret: string[] }>;
    /**
     * In a preview, resources report no computed outputs, as real providers do for a resource
     * they are about to create: a random password's result and a command's stdout are unknown.
     */
    unknownComputedOutputs?: boolean;
    /** stdout of the drift probe's `command:local:run` (default: a session that found nothing). */
    probeStdout?: (inputs: Record<string, any>) => string;
    /** false: only `config`, as the SDK's mocks do; default: Pulumi.yaml's defaults under it, as the real CLI does. */
    projectDefaults?: boolean;
  } = {},
): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const invokes: RecordedInvoke[] = [];
  const mocks: pulumi.runtime.Mocks = {
    newResource: (args) => {
      const resource = resources.find((r) => r.type === args.type && r.name === args.name && Object.keys(r.inputs).length === 0);
      if (resource) {
        resource.inputs = unwrapSecrets(args.inputs);
        const sent = typeof resource.inputs.stdin === "string" ? parseRootInvocation(resource.inputs.stdin) : undefined;
        resource.script = sent?.script;
        resource.payload = sent?.payload;
        resource.deleteScript = typeof resource.inputs.delete === "string" ? sent?.onDelete : undefined;
      }
      if (args.type === "pulumi:pulumi:StackReference") {
        const ref = opts.stackReferences?.[args.inputs.name];
        if (!ref) throw new Error(`no mocked stack ${args.inputs.name}`);
        return { id: args.inputs.name, state: { name: args.inputs.name, outputs: ref.outputs, secretOutputNames: ref.secret } };
      }
      if (opts.preview && opts.unknownComputedOutputs) return { id: undefined, state: args.inputs };
      return { id: `${args.name}-id`, state: mockState(args.type, args.name, unwrapSecrets(args.inputs)) };
    },
    call: (args) => {
      invokes.push({ token: args.token, inputs: args.inputs });
      if (args.token === "command:local:run") return { ...args.inputs, stdout: (opts.probeStdout ?? (() => EMPTY_PROBE_SESSION))(args.inputs), stderr: "" };
      return args.inputs;
    },
  };
  const stack = opts.stack ?? "server";
  await pulumi.runtime.setMocks(mocks, "gitea-homelab", stack, opts.preview ?? false);
  // Swap in the recorder without resetting what setMocks enabled (secrets, resource references).
  state.getStore().settings.monitor = new RecordingMonitor(mocks, resources);
  const withDefaults = opts.projectDefaults === false ? config : { ...projectDefaults(), ...config };
  const prefixed = Object.fromEntries(Object.entries(withDefaults).map(([k, v]) => [k.includes(":") ? k : `gitea-homelab:${k}`, v]));
  pulumi.runtime.setAllConfig(prefixed, (opts.secretKeys ?? []).map((k) => (k.includes(":") ? k : `gitea-homelab:${k}`)));

  // The SDK's log functions are looked up at each call, so the program's warnings can be kept.
  const warnings: string[] = [];
  const log = pulumi.log as { warn: typeof pulumi.log.warn };
  const warn = log.warn;
  log.warn = (message: string) => {
    warnings.push(message);
    return Promise.resolve();
  };
  let outputs: Record<string, unknown>;
  try {
    outputs = await load();
    // `promise(true)` (internal) also resolves an output that is unknown in a preview.
    await Promise.all(Object.values(outputs).map((o) => (pulumi.output(o as any) as any).promise(true)));
    await settings.waitForRPCs();
  } finally {
    log.warn = warn;
  }
  const value = <T>(o: unknown) => new Promise<T>((resolve) => pulumi.output(o as any).apply((v: any) => resolve(v as T)));

  return {
    resources,
    warnings,
    invokes,
    outputs,
    value,
    isSecret: async (o) => (pulumi.Output.isInstance(o) ? await (o as any).isSecret : false),
    byName(name) {
      const found = resources.filter((r) => r.name === name);
      if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${resources.map((r) => r.name).join(", ")}`);
      return found[0];
    },
    ofType: (type) => resources.filter((r) => r.type === type),
  };
}

/** Runs a program that should fail: the error it threw (if any) and what it registered before. */
export async function runExpectingError(
  config: Record<string, string>,
  load: () => Promise<Record<string, unknown>>,
  opts: Parameters<typeof runWithMocks>[2] = {},
): Promise<{ run: ProgramRun; error?: Error }> {
  let error: Error | undefined;
  const run = await runWithMocks(
    config,
    async () => {
      try {
        return await load();
      } catch (err) {
        error = err as Error;
        return {};
      }
    },
    opts,
  );
  return { run, error };
}

/** Strings anywhere inside a value. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === "object") return Object.values(value).flatMap(stringsIn);
  return [];
}

/** Where NEEDLE shows outside Pulumi's secrets: resource inputs not secret, invokes, outputs not secret. */
export async function leaksOutsideSecrets(run: ProgramRun, needle: string): Promise<string[]> {
  const leaks: string[] = [];
  for (const r of run.resources) {
    for (const [key, value] of Object.entries(r.inputs)) {
      if (r.secretInputs.includes(key)) continue;
      if (stringsIn(value).some((s) => s.includes(needle))) leaks.push(`${r.name}.${key}`);
    }
  }
  for (const i of run.invokes) if (stringsIn(i.inputs).some((s) => s.includes(needle))) leaks.push(`invoke ${i.token}`);
  for (const [name, o] of Object.entries(run.outputs)) if (!(await run.isSecret(o)) && stringsIn(await run.value(o)).some((s) => s.includes(needle))) leaks.push(`output ${name}`);
  return leaks;
}
