/**
 * `npm run bench`: the figures we track, on the test VM. Server stack: 1 fresh up, 2 up with no
 * change, 2p preview with no change, 3 HTTP port change (after the wsl stack). Wsl stack (the
 * real runner, registered with the server stack's real Gitea through a StackReference): fresh
 * up, up and preview with no change. For each: wall time, SSH sessions (as the engine counts them, and as the
 * VM's sshd logged them), remote commands run and bytes sent. Prints; asserts nothing.
 */
import { rmSync } from "fs";
import { join } from "path";
import { Engine, RunReport } from "./harness/engine";
import { GITEA_START_MS } from "./harness/gitea";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

interface Row {
  name: string;
  report: RunReport;
  sshdSessions: number;
}

async function measured(vm: TestVm, name: string, run: () => Promise<RunReport>): Promise<Row> {
  const before = await acceptedSshSessions(vm);
  const report = await run();
  // The counting call after the run is one session too.
  const sshdSessions = (await acceptedSshSessions(vm)) - before - 1;
  return { name, report, sshdSessions };
}

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
  const rows: Row[] = [];
  rows.push(await measured(vm, "server 1 fresh up", () => server.up(config)));
  rows.push(await measured(vm, "server 2 up, no change", () => server.up(config)));
  rows.push(await measured(vm, "server 2p preview, no change", () => server.preview(config)));

  // The runner reaches Gitea by its publicHost; on this one VM that is loopback (see wsl.e2e.test.ts).
  await resolveGiteaTestLocally(vm);
  if ((await waitForStatus(`http://127.0.0.1:${vm.forwarded(4111)}/api/healthz`, 200, GITEA_START_MS)) !== 200) throw new Error("Gitea did not become healthy");
  const wsl = fresh("bench-state-wsl.json", { server });
  const runner = wslConfig(vm, { serverStack: "server" });
  rows.push(await measured(vm, "wsl fresh up", () => wsl.up(runner, "wsl")));
  rows.push(await measured(vm, "wsl up, no change", () => wsl.up(runner, "wsl")));
  rows.push(await measured(vm, "wsl preview, no change", () => wsl.preview(runner, "wsl")));
  await wsl.destroy();
  rows.push(await measured(vm, "server 3 httpPort -> 4112", () => server.up({ ...config, httpPort: "4112" })));

  console.log(`\nDebian 13 test VM (accel ${vm.env.VM_ACCEL})`);
  const header = ["scenario".padEnd(30), "wall s".padStart(7), "ssh (engine)".padStart(13), "ssh (sshd)".padStart(11), "commands".padStart(9), "bytes sent".padStart(11)];
  console.log(header.join(" "));
  for (const { name, report: r, sshdSessions } of rows) {
    console.log(
      [
        name.padEnd(30),
        (r.wallMs / 1000).toFixed(1).padStart(7),
        String(r.sshSessions).padStart(13),
        String(sshdSessions).padStart(11),
        String(r.commands.length).padStart(9),
        String(r.bytesSent).padStart(11),
      ].join(" "),
    );
  }
  await server.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
