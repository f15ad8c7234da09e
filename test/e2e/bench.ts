/**
 * `npm run bench`: the figures we track, on the test VM. Server stack: 1 fresh up, 2 up with no
 * change, 2p preview with no change, 3 HTTP port change (after the wsl stack). Wsl stack (the
 * real runner, registered with the server stack's real Gitea through a StackReference): fresh
 * up, up and preview with no change. For each: wall time, SSH sessions (as the engine counts them, and as the
 * VM's sshd logged them), remote commands run and bytes sent. Prints; asserts nothing.
 *
 * Beside each row, so we see where the time goes:
 *   - floor: the same engine's preview or up (whichever the row is) of an empty program, no
 *     resources, on this machine (median of 3 runs);
 *   - limit (fresh-up rows): the row's own create commands, with the stdin each got, run back
 *     to back in ONE SSH session on a clean host (after a destroy), timed from the client;
 *   - probe: the drift probe's SSH session (the `command:local:run` invoke) alone;
 *   - the slowest 5 commands of the row, with their seconds.
 */
import { appendFileSync, copyFileSync, rmSync } from "fs";
import { join } from "path";
import { Engine, ExecutedCommand, RunReport } from "./harness/engine";
import { GITEA_START_MS } from "./harness/gitea";
import { sshRun } from "./harness/ssh";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

interface Row {
  name: string;
  kind: "preview" | "up";
  report: RunReport;
  sshdSessions: number;
  limit?: Replay;
}

async function measured(vm: TestVm, name: string, kind: Row["kind"], run: () => Promise<RunReport>): Promise<Row> {
  const before = await acceptedSshSessions(vm);
  const report = await run();
  // The counting call after the run is one session too.
  const sshdSessions = (await acceptedSshSessions(vm)) - before - 1;
  console.log(`bench: ${name}: ${(report.wallMs / 1000).toFixed(1)} s`);
  return { name, kind, report, sshdSessions };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The engine's own cost: preview and up of a program with no resources, median of `runs`. */
async function floor(rundir: string, config: Record<string, string>, runs = 3): Promise<{ preview: number[]; up: number[] }> {
  const stateFile = join(rundir, "bench-floor-state.json");
  rmSync(stateFile, { force: true });
  const empty = new Engine(stateFile, undefined, {}, { program: async () => ({}) });
  const preview: number[] = [];
  const up: number[] = [];
  for (let i = 0; i < runs; i++) preview.push((await empty.preview(config)).wallMs);
  for (let i = 0; i < runs; i++) up.push((await empty.up(config)).wallMs);
  return { preview, up };
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
async function replayInOneSession(vm: TestVm, commands: ExecutedCommand[]): Promise<Replay> {
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

export function replayScript(commands: Pick<ExecutedCommand, "resource" | "commandLine" | "stdin">[]): string {
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

/** The create commands of a fresh up, in the order they started. */
function createsOf(report: RunReport): ExecutedCommand[] {
  return report.commands.filter((c) => c.operation === "create").sort((a, b) => a.startedMs - b.startedMs);
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
  const fresh = (file: string, references: Record<string, Engine> = {}) => {
    rmSync(join(rundir, file), { force: true });
    return new Engine(join(rundir, file), undefined, references);
  };

  const server = fresh("bench-state.json");
  const config = { ...serverConfig(vm), destroyData: "true", removeUserOnDestroy: "true" };

  const floors = await floor(rundir, config);
  console.log(`bench: floor preview ms ${floors.preview.join(", ")}; up ms ${floors.up.join(", ")}`);
  const floorMs = { preview: median(floors.preview), up: median(floors.up) };

  const rows: Row[] = [];
  rows.push(await measured(vm, "server 1 fresh up", "up", () => server.up(config)));
  // The fresh up's state: its stored deletes clean up after the replay of its creates.
  copyFileSync(join(rundir, "bench-state.json"), join(rundir, "bench-state-fresh.json"));
  rows.push(await measured(vm, "server 2 up, no change", "up", () => server.up(config)));
  rows.push(await measured(vm, "server 2p preview, no change", "preview", () => server.preview(config)));

  // The runner reaches Gitea by its publicHost; on this one VM that is loopback (see wsl.e2e.test.ts).
  await resolveGiteaTestLocally(vm);
  if ((await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)) !== 200) throw new Error("Gitea did not become healthy");
  const wsl = fresh("bench-state-wsl.json", { server });
  const runner = wslConfig(vm, { serverStack: "server" });
  rows.push(await measured(vm, "wsl fresh up", "up", () => wsl.up(runner, "wsl")));
  copyFileSync(join(rundir, "bench-state-wsl.json"), join(rundir, "bench-state-wsl-fresh.json"));
  rows.push(await measured(vm, "wsl up, no change", "up", () => wsl.up(runner, "wsl")));
  rows.push(await measured(vm, "wsl preview, no change", "preview", () => wsl.preview(runner, "wsl")));
  const wslDestroy = await wsl.destroy();
  rows.push(await measured(vm, "server 3 httpPort -> 4112", "up", () => server.up({ ...config, httpPort: "4112" })));

  // The limit: on a clean host (destroyData and removeUserOnDestroy are set), each fresh up's
  // create commands back to back in one SSH session; then its stored deletes clean up.
  const serverDestroy = await server.destroy();
  const extra: string[] = [`wsl destroy: ${secs(wslDestroy.wallMs)} s, ${wslDestroy.commands.length} commands`, `server destroy: ${secs(serverDestroy.wallMs)} s, ${serverDestroy.commands.length} commands`];
  const serverFresh = rows[0];
  const wslFresh = rows.find((r) => r.name === "wsl fresh up")!;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    serverFresh.limit = await replayInOneSession(vm, createsOf(serverFresh.report));
    cleanups.unshift(async () => {
      const d = await new Engine(join(rundir, "bench-state-fresh.json")).destroy();
      extra.push(`server cleanup destroy after the replay: ${secs(d.wallMs)} s`);
    });
    if (serverFresh.limit.exitCode === 0) {
      if ((await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)) !== 200) extra.push("Gitea not healthy after the server replay");
      wslFresh.limit = await replayInOneSession(vm, createsOf(wslFresh.report));
      cleanups.unshift(async () => {
        const d = await new Engine(join(rundir, "bench-state-wsl-fresh.json")).destroy();
        extra.push(`wsl cleanup destroy after the replay: ${secs(d.wallMs)} s`);
      });
    }
  } catch (err) {
    extra.push(`limit replay failed: ${(err as Error).message}`);
  }

  console.log(`\nDebian 13 test VM (accel ${vm.env.VM_ACCEL})`);
  console.log(`floor: median of 3 of an empty program, this engine: preview ${(floorMs.preview / 1000).toFixed(3)} s (${floors.preview.join(", ")} ms), up ${(floorMs.up / 1000).toFixed(3)} s (${floors.up.join(", ")} ms)`);
  const header = [
    "scenario".padEnd(30),
    "wall s".padStart(7),
    "floor s".padStart(8),
    "limit s".padStart(8),
    "probe s".padStart(8),
    "ssh (engine)".padStart(13),
    "ssh (sshd)".padStart(11),
    "commands".padStart(9),
    "bytes sent".padStart(11),
    "  slowest 5 commands (s)",
  ];
  console.log(header.join(" "));
  for (const { name, kind, report: r, sshdSessions, limit } of rows) {
    console.log(
      [
        name.padEnd(30),
        secs(r.wallMs).padStart(7),
        (floorMs[kind] / 1000).toFixed(2).padStart(8),
        (limit ? (limit.exitCode === 0 ? secs(limit.wallMs) : `fail${limit.exitCode}`) : "-").padStart(8),
        (r.localRunTimes.length ? r.localRunTimes.map((l) => secs(l.ms)).join("+") : "-").padStart(8),
        String(r.sshSessions).padStart(13),
        String(sshdSessions).padStart(11),
        String(r.commands.length).padStart(9),
        String(r.bytesSent).padStart(11),
        `  ${slowest(r.commands) || "-"}`,
      ].join(" "),
    );
  }
  console.log("\nDetails:");
  for (const { name, report: r, limit } of rows) {
    const sum = r.commands.reduce((a, c) => a + c.ms, 0);
    const probe = r.localRunTimes.reduce((a, l) => a + l.ms, 0);
    console.log(`${name}: wall ${secs(r.wallMs)} s = commands ${secs(sum)} s + probe ${secs(probe)} s + rest ${secs(r.wallMs - sum - probe)} s`);
    if (limit) {
      console.log(
        `  limit: ${limit.commands} creates in one SSH session: ${secs(limit.wallMs)} s client wall (${secs(limit.inSessionMs)} s in the session, ${limit.bytesSent} bytes uploaded, exit ${limit.exitCode}); slowest: ${slowest(limit.perCommand)}`,
      );
      console.log(`  limit per command (s): ${limit.perCommand.map((c) => `${c.resource} ${secs(c.ms)}`).join(", ")}`);
      console.log(`  engine per command (s): ${createsOf(r).map((c) => `${c.resource} ${secs(c.ms)}`).join(", ")}`);
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
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
