/**
 * `npm run bench`: the figures we track, on the test VM, with the real Pulumi CLI
 * (test/e2e/harness/pulumiCli.ts). Server stack: 1 fresh up, 2 up with no change, 2p preview
 * with no change, 3 HTTP port change (after the wsl stack). Wsl stack (the real runner,
 * registered with the server stack's real Gitea through a StackReference): fresh up, up and
 * preview with no change. For each: wall time, SSH sessions (as the VM's sshd logged them),
 * remote commands run and bytes sent (each command's script and stdin, from the stack's state).
 * Prints; asserts nothing.
 *
 * Beside each row, so we see where the time goes:
 *   - floor: the CLI's preview or up (whichever the row is) of an empty program, no resources,
 *     on this machine (median of 3 runs): the CLI, its language host and the program's start;
 *   - limit (fresh-up rows): the row's own create commands, with the stdin each got (read from
 *     the stack's state: `pulumi stack export --show-secrets`), run back to back in ONE SSH
 *     session on a clean host (after a destroy), timed from the client;
 *   - the slowest 5 commands of the row, from the CLI's event log: its events carry whole
 *     seconds, so each command's time is too.
 * The CLI does not time its invokes, so the drift probe's own session has no column any more;
 * and the engine runs independent commands in parallel, so their times may add up to more
 * than the wall time.
 *
 * Also the wall time of previews the program refuses before anything runs (a stack of their
 * own, "bench-refused"): credentials the host does not take, and a given certificate that does
 * not name publicHost. The suites check what these say; how long they take is a figure here.
 *
 * And off-site copies: the bytes a push adds for a forge with 4 MB of repository data, first and
 * again unchanged (restic deduplicates), with the time of the backup and its push.
 */
import { execFileSync } from "child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "fs";
import { join } from "path";
import { GITEA_START_MS, giteaApi } from "./harness/gitea";
import { startS3Server } from "./harness/offsiteServers";
import { CliStack, CliWorkspace, DeploymentError, openWorkspace, RunReport, Workspace } from "./harness/pulumiCli";
import { sshRun } from "./harness/ssh";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const COMMAND = "command:remote:Command";

/** A remote command as the state holds it: what the provider runs, with the stdin it gives. */
interface StoredCommand {
  create?: string;
  delete?: string;
  stdin?: string;
}

/** A command line to replay, with its stdin. */
export interface ReplayCommand {
  resource: string;
  commandLine: string;
  stdin?: string;
}

interface CommandTime {
  resource: string;
  ms: number;
}

interface Row {
  name: string;
  kind: "preview" | "up";
  report: RunReport;
  /** Each command's time, from the event log (whole seconds). */
  times: CommandTime[];
  bytesSent: number;
  /** The remote commands of the stack's state after the run, by resource name. */
  stored: Map<string, StoredCommand>;
  limit?: Replay;
}

/** A secret in an export with --show-secrets: its value is JSON in `plaintext`. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (SECRET_SIG in o && typeof o.plaintext === "string") return revealed(JSON.parse(o.plaintext));
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, revealed(v)]));
  }
  return value;
}

/** The remote commands of the stack's state, secrets shown, in the state's (dependency) order. */
async function storedCommands(stack: CliStack): Promise<Map<string, StoredCommand>> {
  const r = await stack.cli(["stack", "export", "--show-secrets", "--stack", stack.name]);
  if (r.code !== 0) throw new Error(`pulumi stack export failed (${r.code}): ${r.stderr}`);
  const resources = (JSON.parse(r.stdout).deployment?.resources ?? []) as Array<{ urn: string; type: string; inputs?: Record<string, unknown> }>;
  const commands = new Map<string, StoredCommand>();
  for (const res of resources) {
    if (res.type !== COMMAND) continue;
    const inputs = revealed(res.inputs ?? {}) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === "string" ? v : undefined);
    commands.set(res.urn.slice(res.urn.lastIndexOf("::") + 2), { create: text(inputs.create), delete: text(inputs.delete), stdin: text(inputs.stdin) });
  }
  return commands;
}

/**
 * The event log of the stack's last `verb`. pulumiCli.ts writes one per run into the
 * workspace's scratch directory, named STACK-N-VERB.events.jsonl, but does not hand it out.
 */
function lastEventLog(ws: CliWorkspace, stack: string, verb: string): string | undefined {
  if (!existsSync(ws.scratch)) return undefined;
  const pattern = new RegExp(`^${stack.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-\\d+-${verb}\\.events\\.jsonl$`);
  return readdirSync(ws.scratch)
    .filter((f) => pattern.test(f))
    .map((f) => join(ws.scratch, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/** Each remote command's time in a run: its step's start and end events (whole seconds). */
function commandTimes(eventLog: string | undefined, planning: boolean): CommandTime[] {
  if (!eventLog) return [];
  const started = new Map<string, number>();
  const times: CommandTime[] = [];
  for (const line of readFileSync(eventLog, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    let e: any;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    const step = e.resourcePreEvent ?? e.resOutputsEvent ?? e.resOpFailedEvent;
    const m = step?.metadata;
    // A "same" step runs nothing: listing it among the slowest would only show zeros.
    if (!m || m.type !== COMMAND || m.op === "same" || Boolean(step.planning) !== planning || typeof e.timestamp !== "number") continue;
    const key = `${m.urn} ${m.op}`;
    if (e.resourcePreEvent) started.set(key, e.timestamp);
    else if (started.has(key)) times.push({ resource: m.urn.slice(m.urn.lastIndexOf("::") + 2), ms: (e.timestamp - started.get(key)!) * 1000 });
  }
  return times;
}

/** What the run sent to the host: each command's script (delete: the stored one) and its stdin. */
function bytesSent(report: RunReport, before: Map<string, StoredCommand>, after: Map<string, StoredCommand>): number {
  let bytes = 0;
  for (const c of report.commands) {
    const stored = c.operation === "delete" ? before.get(c.resource) : after.get(c.resource);
    const script = c.operation === "delete" ? stored?.delete : stored?.create;
    bytes += Buffer.byteLength(script ?? "") + Buffer.byteLength(stored?.stdin ?? "");
  }
  return bytes;
}

async function measured(ws: CliWorkspace, stack: CliStack, name: string, kind: Row["kind"], run: () => Promise<RunReport>): Promise<Row> {
  // A stack never updated may have no state to export: nothing stored then.
  const before = await storedCommands(stack).catch(() => new Map<string, StoredCommand>());
  const report = await run();
  const stored = await storedCommands(stack);
  console.log(`bench: ${name}: ${(report.wallMs / 1000).toFixed(1)} s`);
  // A preview runs no command (its report's commands are the ones up would run).
  if (kind === "preview") return { name, kind, report: { ...report, commands: [] }, times: [], bytesSent: 0, stored };
  return { name, kind, report, times: commandTimes(lastEventLog(ws, stack.name, kind), false), bytesSent: bytesSent(report, before, stored), stored };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A project of its own whose program registers nothing, beside the workspace's (same packages). */
function emptyProject(ws: Workspace, rundir: string): CliWorkspace {
  const repo = join(__dirname, "..", "..");
  // pulumi-*: with-vm.sh clears it with the rest of the workspace.
  const dir = join(rundir, "pulumi-bench-floor");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Pulumi.yaml"), "name: gitea-homelab-bench-floor\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n");
  writeFileSync(join(dir, "index.ts"), "// The bench's floor: a program with no resources.\nexport {};\n");
  for (const entry of ["package.json", "tsconfig.json", "node_modules"]) symlinkSync(join(repo, entry), join(dir, entry));
  return { ...ws, project: dir };
}

/** The CLI's own cost: preview and up of a program with no resources, median of `runs`. */
async function floor(ws: Workspace, rundir: string, runs = 3): Promise<{ preview: number[]; up: number[] }> {
  const empty = await new CliStack(emptyProject(ws, rundir), "floor", []).init();
  const preview: number[] = [];
  const up: number[] = [];
  for (let i = 0; i < runs; i++) preview.push((await empty.preview({})).wallMs);
  for (let i = 0; i < runs; i++) up.push((await empty.up({})).wallMs);
  return { preview, up };
}

/** A preview the program should refuse: its wall time, and whether the refusal named `key`. */
async function refusedPreview(stack: CliStack, name: string, config: Record<string, string>, env: Record<string, string | undefined>, key: string): Promise<string> {
  stack.envOverrides = env;
  const outcome = await stack.preview(config).then(
    (report) => ({ ms: report.wallMs, note: " (the preview passed)" }),
    (e: unknown) => {
      if (!(e instanceof DeploymentError)) throw e;
      return { ms: e.report.wallMs, note: e.message.includes(`gitea-homelab:${key}`) ? "" : ` (refused without naming ${key})` };
    },
  );
  stack.envOverrides = {};
  console.log(`bench: refused preview, ${name}: ${secs(outcome.ms)} s${outcome.note}`);
  return `${name} ${secs(outcome.ms)} s${outcome.note}`;
}

/** Previews refused before anything runs: credentials the host does not take, a certificate not naming publicHost. */
async function refusedPreviews(ws: CliWorkspace, vm: TestVm, rundir: string, log: string[]): Promise<string[]> {
  const stack = await new CliStack(ws, "bench-refused", log).init();
  const stranger = join(rundir, "bench-stranger-key");
  rmSync(stranger, { force: true });
  rmSync(`${stranger}.pub`, { force: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
  const other = join(rundir, "bench-other-certificate");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/O=bench", "-addext", "subjectAltName=DNS:other.test", "-keyout", `${other}.key`, "-out", `${other}.crt`], { stdio: "ignore" });
  const config: Record<string, string> = { ...serverConfig(vm), role: "server" };
  const { privateKey: _key, ...keyless } = config;
  const noAgent = { SSH_AUTH_SOCK: undefined };
  return [
    await refusedPreview(stack, "no key and no ssh-agent", keyless, noAgent, "privateKey"),
    await refusedPreview(stack, "a key the host refuses", { ...config, privateKey: readFileSync(stranger, "utf8") }, noAgent, "privateKey"),
    await refusedPreview(stack, "a certificate not naming publicHost", { ...serverConfig(vm, { tls: "given" }), role: "server", tlsCertificate: readFileSync(`${other}.crt`, "utf8"), tlsKey: readFileSync(`${other}.key`, "utf8") }, {}, "tlsCertificate"),
  ];
}

interface Replay {
  /** Client wall time of the one SSH session, upload included. */
  wallMs: number;
  /** Sum of the commands' times as measured on the host. */
  inSessionMs: number;
  perCommand: { resource: string; ms: number; exitCode: number }[];
  exitCode: number;
  commands: number;
  bytesSent: number;
}

/**
 * Runs `commands` (their full command lines, with the stdin each got) back to back in one SSH
 * session as the VM's operator: one script, uploaded on the session's stdin, runs each line
 * with the login shell as sshd would, its stdin from a file, stops at the first failure, and
 * prints each command's time. Nothing of the lines or stdins is printed.
 */
async function replayInOneSession(vm: TestVm, commands: ReplayCommand[]): Promise<Replay> {
  const script = replayScript(commands);
  const result = await sshRun(vm.operator, REPLAY_LAUNCHER, script);
  // A failing command's stderr may hold secrets: kept in a 0600 file in the run dir, not printed.
  appendFileSync(join(vm.rundir, "bench-replay-stderr.txt"), result.stdout.split("\n").filter((l) => l.startsWith("@@replay-stderr ")).join("\n") + result.stderr, { mode: 0o600 });
  const perCommand = parseReplay(result.stdout);
  if (result.code !== 0) console.log(`bench: replay exited ${result.code} after ${perCommand.length} of ${commands.length} commands (${perCommand.at(-1)?.resource ?? "-"}); its stderr is in bench-replay-stderr.txt`);
  return {
    wallMs: result.ms,
    inSessionMs: perCommand.reduce((a, c) => a + c.ms, 0),
    perCommand,
    exitCode: result.code,
    commands: commands.length,
    bytesSent: Buffer.byteLength(script),
  };
}

/** The one session's command line: takes the script from stdin into a file, then runs it. */
export const REPLAY_LAUNCHER = 'f=$(mktemp) && cat >"$f" && bash "$f"; rc=$?; rm -f "$f"; exit $rc';

export function parseReplay(stdout: string): { resource: string; ms: number; exitCode: number }[] {
  return [...stdout.matchAll(/^@@replay (\d+) (\S+) (\d+) (\d+)$/gm)].map((m) => ({ resource: m[2], exitCode: Number(m[3]), ms: Number(m[4]) }));
}

export function replayScript(commands: ReplayCommand[]): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64").replace(/.{1,76}/g, "$&\n");
  const parts = [
    "set -u",
    'd=$(mktemp -d) || exit 70',
    "trap 'rm -rf \"$d\"' EXIT",
    'login_shell=${SHELL:-/bin/sh}',
    ': >"$d/times"',
    'now() { date +%s%N; }',
    'run() { # index name',
    '  local s e rc',
    '  s=$(now)',
    '  if [ -f "$d/s$1" ]; then "$login_shell" -c "$(cat "$d/c$1")" <"$d/s$1"; else "$login_shell" -c "$(cat "$d/c$1")" </dev/null; fi',
    '  rc=$?',
    '  e=$(now)',
    '  echo "@@replay $1 $2 $rc $(( (e - s) / 1000000 ))" >>"$d/times"',
    '  return $rc',
    '}',
  ];
  commands.forEach((c, i) => {
    parts.push(`base64 -d >"$d/c${i}" <<'@@B64'\n${b64(c.commandLine)}@@B64`);
    if (c.stdin) parts.push(`base64 -d >"$d/s${i}" <<'@@B64'\n${b64(c.stdin)}@@B64`);
  });
  parts.push("rc=0");
  commands.forEach((c, i) => parts.push(`[ $rc -eq 0 ] && { run ${i} ${c.resource} >/dev/null 2>"$d/err" || rc=$?; }`));
  parts.push('[ $rc -eq 0 ] || tail -n 5 "$d/err" | sed "s/^/@@replay-stderr /"', 'cat "$d/times"', "exit $rc");
  return `${parts.join("\n")}\n`;
}

/** The create commands of a fresh up, in the state's order (each after what it depends on), as stored. */
function createsOf(row: Row): ReplayCommand[] {
  const created = new Set(row.report.commands.filter((c) => c.operation === "create").map((c) => c.resource));
  return [...row.stored.entries()].filter(([name, c]) => created.has(name) && c.create !== undefined).map(([name, c]) => ({ resource: name, commandLine: c.create!, stdin: c.stdin }));
}

/** `pulumi stack export` to `file` (secrets stay encrypted), for an import after the replay. */
async function exportState(stack: CliStack, file: string): Promise<void> {
  const r = await stack.cli(["stack", "export", "--stack", stack.name, "--file", file]);
  if (r.code !== 0) throw new Error(`pulumi stack export failed (${r.code}): ${r.stderr}`);
}

/** The fresh up's state back into the (destroyed) stack, then `pulumi destroy`: its stored deletes clean up after the replay. */
async function destroyFromState(stack: CliStack, file: string): Promise<RunReport> {
  const r = await stack.cli(["stack", "import", "--stack", stack.name, "--file", file]);
  if (r.code !== 0) throw new Error(`pulumi stack import failed (${r.code}): ${r.stderr}`);
  return stack.destroy();
}

const secs = (ms: number) => (ms / 1000).toFixed(1);
const slowest = (cs: { resource: string; ms: number }[], n = 5) =>
  [...cs]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((c) => `${c.resource} ${(c.ms / 1000).toFixed(1)}`)
    .join(", ");

async function main(): Promise<void> {
  const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
  if (!rundir) throw new Error("GITEA_HOMELAB_VM_RUNDIR is not set; run through `npm run bench`");
  const vm = testVm(rundir);
  const ws = await openWorkspace(rundir, { suite: "bench", sshSessions: () => acceptedSshSessions(vm) });

  const log: string[] = [];

  const server = await new CliStack(ws, "bench-server", log).init();
  const config = { ...serverConfig(vm), role: "server", destroyData: "true", removeUserOnDestroy: "true" };

  const floors = await floor(ws, rundir);
  console.log(`bench: floor preview ms ${floors.preview.join(", ")}; up ms ${floors.up.join(", ")}`);
  const floorMs = { preview: median(floors.preview), up: median(floors.up) };
  const refused = await refusedPreviews(ws, vm, rundir, log);

  const rows: Row[] = [];
  rows.push(await measured(ws, server, "server 1 fresh up", "up", () => server.up(config)));
  // The fresh up's state: its stored deletes clean up after the replay of its creates.
  const serverFreshState = join(rundir, "pulumi-bench-server-fresh.json");
  await exportState(server, serverFreshState);
  rows.push(await measured(ws, server, "server 2 up, no change", "up", () => server.up(config)));
  rows.push(await measured(ws, server, "server 2p preview, no change", "preview", () => server.preview(config)));

  // The runner reaches Gitea by its publicHost; on this one VM that is loopback (see wsl.e2e.test.ts).
  await resolveGiteaTestLocally(vm);
  if ((await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)) !== 200) throw new Error("Gitea did not become healthy");
  const wsl = await new CliStack(ws, "bench-wsl", log).init();
  const runner = wslConfig(vm, { role: "wsl", serverStack: server.qualifiedName });
  rows.push(await measured(ws, wsl, "wsl fresh up", "up", () => wsl.up(runner)));
  const wslFreshState = join(rundir, "pulumi-bench-wsl-fresh.json");
  await exportState(wsl, wslFreshState);
  rows.push(await measured(ws, wsl, "wsl up, no change", "up", () => wsl.up(runner)));
  rows.push(await measured(ws, wsl, "wsl preview, no change", "preview", () => wsl.preview(runner)));
  const wslDestroy = await wsl.destroy();
  const offsite = await offsiteFigures(vm, server, config, rundir);
  rows.push(await measured(ws, server, "server 3 httpPort -> 4112", "up", () => server.up({ ...config, httpPort: "4112" })));

  // The limit: on a clean host (destroyData and removeUserOnDestroy are set), each fresh up's
  // create commands back to back in one SSH session; then its stored deletes clean up.
  const serverDestroy = await server.destroy();
  const extra: string[] = [`wsl destroy: ${secs(wslDestroy.wallMs)} s, ${wslDestroy.commands.length} commands`, `server destroy: ${secs(serverDestroy.wallMs)} s, ${serverDestroy.commands.length} commands`];
  const serverFresh = rows[0];
  const wslFresh = rows.find((r) => r.name === "wsl fresh up")!;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    serverFresh.limit = await replayInOneSession(vm, createsOf(serverFresh));
    cleanups.unshift(async () => {
      const d = await destroyFromState(server, serverFreshState);
      extra.push(`server cleanup destroy after the replay: ${secs(d.wallMs)} s`);
    });
    if (serverFresh.limit.exitCode === 0) {
      if ((await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)) !== 200) extra.push("Gitea not healthy after the server replay");
      wslFresh.limit = await replayInOneSession(vm, createsOf(wslFresh));
      cleanups.unshift(async () => {
        const d = await destroyFromState(wsl, wslFreshState);
        extra.push(`wsl cleanup destroy after the replay: ${secs(d.wallMs)} s`);
      });
    }
  } catch (err) {
    extra.push(`limit replay failed: ${(err as Error).message}`);
  }

  console.log(`\nDebian 13 test VM (accel ${vm.env.VM_ACCEL}); the real Pulumi CLI, command plugin: ${ws.plugins.command}, random plugin: ${ws.plugins.random}`);
  console.log(`floor: median of 3 of an empty program, this CLI: preview ${(floorMs.preview / 1000).toFixed(3)} s (${floors.preview.join(", ")} ms), up ${(floorMs.up / 1000).toFixed(3)} s (${floors.up.join(", ")} ms)`);
  console.log(`refused previews (wall, nothing runs on the host): ${refused.join("; ")}`);
  const header = [
    "scenario".padEnd(30),
    "wall s".padStart(7),
    "floor s".padStart(8),
    "limit s".padStart(8),
    "ssh (sshd)".padStart(11),
    "commands".padStart(9),
    "bytes sent".padStart(11),
    "  slowest 5 commands (s, whole seconds)",
  ];
  console.log(header.join(" "));
  for (const { name, kind, report: r, times, bytesSent: bytes, limit } of rows) {
    console.log(
      [
        name.padEnd(30),
        secs(r.wallMs).padStart(7),
        (floorMs[kind] / 1000).toFixed(2).padStart(8),
        (limit ? (limit.exitCode === 0 ? secs(limit.wallMs) : `fail${limit.exitCode}`) : "-").padStart(8),
        String(r.sshSessions).padStart(11),
        String(r.commands.length).padStart(9),
        String(bytes).padStart(11),
        `  ${slowest(times) || "-"}`,
      ].join(" "),
    );
  }
  console.log("\nDetails:");
  for (const { name, report: r, times, limit } of rows) {
    const sum = times.reduce((a, c) => a + c.ms, 0);
    console.log(`${name}: wall ${secs(r.wallMs)} s; the commands' times add up to ${secs(sum)} s (whole seconds each; independent ones run in parallel)`);
    if (limit) {
      console.log(
        `  limit: ${limit.commands} creates in one SSH session: ${secs(limit.wallMs)} s client wall (${secs(limit.inSessionMs)} s in the session, ${limit.bytesSent} bytes uploaded, exit ${limit.exitCode}); slowest: ${slowest(limit.perCommand)}`,
      );
      console.log(`  limit per command (s): ${limit.perCommand.map((c) => `${c.resource} ${secs(c.ms)}`).join(", ")}`);
      console.log(`  CLI per command (s, whole seconds): ${times.filter((t) => limit.perCommand.some((c) => c.resource === t.resource)).map((c) => `${c.resource} ${secs(c.ms)}`).join(", ")}`);
    }
  }
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (err) {
      extra.push(`cleanup failed: ${(err as Error).message}`);
    }
  }
  for (const line of extra) console.log(line);
  for (const line of offsite) console.log(line);
}

/**
 * Off-site copies (issue 34): what a push costs as the forge changes or not. The forge gets a
 * repository holding 4 MB of random data (incompressible, like packed git objects); then the
 * stack is given an off-site repository on the stand-in bucket (rclone serve s3, outside the VM),
 * and the backup service runs twice: the first push uploads the backup, the second, of the
 * unchanged forge, only what changed (restic deduplicates). Prints the figures from the tool's
 * record on the host; the stack goes back to no off-site copy after.
 */
async function offsiteFigures(vm: TestVm, server: CliStack, config: Record<string, string>, rundir: string): Promise<string[]> {
  const web = `http://127.0.0.1:${vm.forwarded(4111)}`;
  const auth = { username: "gitea-admin", password: server.lastOutputs().adminPassword as string };
  await giteaApi(web, "/user/repos", { auth, method: "POST", body: { name: "bench-data", auto_init: true } });
  const blob = execFileSync("head", ["-c", String(4 * 1024 * 1024), "/dev/urandom"]);
  const put = await giteaApi(web, "/repos/gitea-admin/bench-data/contents/random.bin", { auth, method: "POST", body: { content: blob.toString("base64"), message: "4 MB of random data" } });
  if (put.status >= 300) return [`off-site: could not add data to the forge (${put.status})`];
  const s3 = await startS3Server({ dir: join(rundir, "bench-offsite"), ...vm.hostService("s3") });
  const lines: string[] = [];
  try {
    const withOffsite = {
      ...config,
      offsiteRepository: s3.repository,
      offsitePassword: "bench-offsite-password-0123456789",
      "offsiteEnvironment.AWS_ACCESS_KEY_ID": s3.accessKeyId,
      "offsiteEnvironment.AWS_SECRET_ACCESS_KEY": s3.secretAccessKey,
    };
    const setup = await server.up(withOffsite);
    const record = async (): Promise<Record<string, string>> => Object.fromEntries((await vm.root("cat /var/backups/gitea-homelab/offsite-status")).split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    const push = async (): Promise<{ seconds: number; record: Record<string, string> }> => {
      const start = Date.now();
      await vm.asUser("rootless", "systemctl --user start gitea-backup.service");
      return { seconds: (Date.now() - start) / 1000, record: await record() };
    };
    const { seconds: firstSeconds, record: first } = await push();
    const { seconds: secondSeconds, record: second } = await push();
    const pct = (n: string, of: string) => ((100 * Number(n)) / Number(of)).toFixed(2);
    lines.push(
      `off-site (stand-in bucket, rclone serve s3): up that sets it up (restic, init) ${secs(setup.wallMs)} s`,
      `off-site: backup + first push ${firstSeconds.toFixed(1)} s: ${first.data_added} bytes added of a ${first.backup_bytes}-byte backup (${pct(first.data_added, first.backup_bytes)} %)`,
      `off-site: backup + second push, unchanged forge ${secondSeconds.toFixed(1)} s: ${second.data_added} bytes added of ${second.backup_bytes} (${pct(second.data_added, second.backup_bytes)} %)`,
    );
    await server.up(config);
  } catch (err) {
    lines.push(`off-site figures failed: ${(err as Error).message}`);
  } finally {
    await s3.stop();
  }
  return lines;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
