/**
 * Makes the provider TEST DOUBLES the Pulumi CLI's `command` and `random` plugins, for the e2e
 * suite where the real plugins are not available (CI), and tells whether the real ones are.
 *
 * Each double gets a launcher script, `pulumi-resource-<name>`: `#!/bin/sh` and an `exec` of this
 * Node (process.execPath) with tsx's loader (`--import`, so it is one process the engine can
 * stop, not tsx's CLI with a child) on the double's .ts file, passing the engine's arguments.
 * `pulumi plugin install resource <name> <version> --file <launcher>` copies the script into
 * PULUMI_HOME as that plugin (checked with CLI v3.276.0: --file takes any executable, so no
 * PATH fallback is needed; the harness's PULUMI_IGNORE_AMBIENT_PLUGINS would defeat one anyway).
 * The launcher names itself a test double, which is how `realPlugins` tells a double from the
 * real plugin at the same version.
 */
import { spawn } from "child_process";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from "fs";
import { homedir } from "os";
import { join } from "path";
import { pathToFileURL } from "url";
import { COMMAND_PROVIDER_DOUBLE_VERSION } from "./commandProviderDouble";
import { RANDOM_PROVIDER_DOUBLE_VERSION } from "./randomProviderDouble";

export type ProviderName = "command" | "random";
export type PluginKind = "real plugin" | "test double";

const MARKER = "gitea-homelab provider TEST DOUBLE";
const REPO = join(__dirname, "..", "..", "..");

export const PROVIDER_DOUBLES: Record<ProviderName, { version: string; source: string; sdk: string }> = {
  command: { version: COMMAND_PROVIDER_DOUBLE_VERSION, source: join(__dirname, "commandProviderDouble.ts"), sdk: "@pulumi/command" },
  random: { version: RANDOM_PROVIDER_DOUBLE_VERSION, source: join(__dirname, "randomProviderDouble.ts"), sdk: "@pulumi/random" },
};

function cli(pulumiCli: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(pulumiCli, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** PULUMI_HOME of `env`; doubles are only ever installed into one set explicitly. */
function pulumiHome(env: NodeJS.ProcessEnv): string {
  return env.PULUMI_HOME ?? join(homedir(), ".pulumi");
}

/** Where the CLI keeps the plugin binary of `name` at `version` in `home`. */
function pluginBinary(home: string, name: ProviderName, version: string): string {
  return join(home, "plugins", `resource-${name}-v${version}`, `pulumi-resource-${name}`);
}

/** Whether the file at `path` is one of our launchers (reads its first bytes only). */
function isDouble(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).toString("latin1").includes(MARKER);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The plugin version each SDK asks for (its package.json's pulumi.version, else its version). */
function sdkPluginVersion(sdk: string): string {
  const pkg = JSON.parse(readFileSync(join(REPO, "node_modules", sdk, "package.json"), "utf8"));
  return pkg.pulumi?.version ?? pkg.version;
}

/**
 * Whether the REAL plugins are installed in env's PULUMI_HOME at the versions the doubles
 * stand in for: `pulumi plugin ls --json` lists them, and the binary is not one of our launchers.
 */
export async function realPlugins(pulumiCli: string, env: NodeJS.ProcessEnv): Promise<Record<ProviderName, boolean>> {
  const r = await cli(pulumiCli, ["plugin", "ls", "--json"], env);
  if (r.code !== 0) throw new Error(`pulumi plugin ls --json failed (${r.code}): ${r.stderr.trim()}`);
  const listed = JSON.parse(r.stdout.trim() || "[]") as Array<{ name: string; kind: string; version: string }>;
  const home = pulumiHome(env);
  const real = (name: ProviderName) => {
    const { version } = PROVIDER_DOUBLES[name];
    return listed.some((p) => p.kind === "resource" && p.name === name && p.version === version) && !isDouble(pluginBinary(home, name, version));
  };
  return { command: real("command"), random: real("random") };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes the launcher of the `name` double into `dir`; returns its path. */
export function writeLauncher(dir: string, name: ProviderName): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `pulumi-resource-${name}`);
  const loader = pathToFileURL(require.resolve("tsx")).href;
  writeFileSync(
    path,
    [
      "#!/bin/sh",
      `# ${MARKER}: NOT the real pulumi-resource-${name} ${PROVIDER_DOUBLES[name].version}.`,
      "# Written by test/e2e/doubles/install.ts for the e2e suite; see that folder.",
      `exec ${[process.execPath, "--import", loader, PROVIDER_DOUBLES[name].source].map(shellQuote).join(" ")} "$@"`,
      "",
    ].join("\n"),
  );
  chmodSync(path, 0o755);
  return path;
}

export interface ProviderDoublesSetup {
  /** For each provider, what the CLI will run: "command: test double" or "command: real plugin". */
  plugins: Record<ProviderName, PluginKind>;
  /** The launchers written, for the doubles installed. */
  launchers: Partial<Record<ProviderName, string>>;
}

/**
 * Installs the doubles into env's PULUMI_HOME (which must be set: a double must never land in a
 * developer's own ~/.pulumi, where real deployments would pick it up) for each provider whose
 * real plugin that home does not already have, writing the launchers into `launcherDir` (e.g.
 * under the repository's ignored .e2e/). Says which providers are real and which are doubles.
 */
export async function installProviderDoubles(pulumiCli: string, env: NodeJS.ProcessEnv, launcherDir: string): Promise<ProviderDoublesSetup> {
  if (!env.PULUMI_HOME) throw new Error("installProviderDoubles: set PULUMI_HOME to a scratch directory; the provider test doubles are never installed into ~/.pulumi");
  for (const [name, d] of Object.entries(PROVIDER_DOUBLES)) {
    const wanted = sdkPluginVersion(d.sdk);
    if (wanted !== d.version) throw new Error(`${d.sdk} asks for the ${name} plugin ${wanted}, but its test double is ${d.version}: update test/e2e/doubles/`);
  }
  const real = await realPlugins(pulumiCli, env);
  const setup: ProviderDoublesSetup = { plugins: { command: "real plugin", random: "real plugin" }, launchers: {} };
  for (const name of ["command", "random"] as const) {
    if (real[name]) continue;
    const launcher = writeLauncher(launcherDir, name);
    // --reinstall: a launcher from an earlier run may point at another checkout or Node.
    const r = await cli(pulumiCli, ["plugin", "install", "resource", name, PROVIDER_DOUBLES[name].version, "--file", launcher, "--reinstall"], env);
    if (r.code !== 0) throw new Error(`pulumi plugin install resource ${name} --file ${launcher} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
    setup.plugins[name] = "test double";
    setup.launchers[name] = launcher;
  }
  return setup;
}

/** "command: test double, random: real plugin", for the suite's banner. */
export function describePlugins(plugins: Record<ProviderName, PluginKind>): string {
  return (Object.keys(plugins) as ProviderName[]).map((n) => `${n}: ${plugins[n]}`).join(", ");
}
