/**
 * `npm run bench`: the figures we track for the server stack, on the test VM: for scenario 1
 * (fresh up), 2 (up with no change) and 3 (HTTP port change), the wall time, SSH sessions
 * opened, remote commands executed and bytes sent. Prints; asserts nothing about time.
 */
import { rmSync } from "fs";
import { join } from "path";
import { Engine, RunReport } from "./harness/engine";
import { serverConfig, testVm } from "./harness/vm";

async function main(): Promise<void> {
  const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
  if (!rundir) throw new Error("GITEA_HOMELAB_VM_RUNDIR is not set; run through `npm run bench`");
  const vm = testVm(rundir);
  const stateFile = join(rundir, "bench-state.json");
  rmSync(stateFile, { force: true });
  const engine = new Engine(stateFile);
  const config = serverConfig(vm);
  const rows: Array<[string, RunReport]> = [];
  rows.push(["1 fresh up", await engine.up(config)]);
  rows.push(["2 up, no change", await engine.up(config)]);
  rows.push(["3 httpPort 4111 -> 4112", await engine.up({ ...config, httpPort: "4112" })]);

  console.log(`\nserver stack on the Debian 13 VM (accel ${vm.env.VM_ACCEL})`);
  console.log(["scenario".padEnd(26), "wall s".padStart(8), "ssh sessions".padStart(13), "commands".padStart(9), "bytes sent".padStart(11)].join(" "));
  for (const [name, r] of rows) {
    console.log([name.padEnd(26), (r.wallMs / 1000).toFixed(1).padStart(8), String(r.sshSessions).padStart(13), String(r.commands.length).padStart(9), String(r.bytesSent).padStart(11)].join(" "));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
