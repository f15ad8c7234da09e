/**
 * The backup tool's off-site functions, run in bash against a stand-in restic (a script that
 * records its arguments, working directory and environment, and answers as told). The real
 * restic against real backends is in the end-to-end suite (offsite.e2e.test.ts).
 */
import { spawnSync } from "child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { userInfo, tmpdir } from "os";
import { join } from "path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderScript, sh, shellFunctions } from "../render/shell";
import { OFFSITE_DIR, OFFSITE_TOOL_FUNCTIONS, offsiteToolSpec, offsiteToolVars } from "./render";

const PASSWORD = "correct horse battery staple";
// Ends with one =, which bash's read with IFS="=" would drop.
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE=";

/** The stand-in: logs one line per call (cwd, then argv), and the environment restic got. */
const STAND_IN_RESTIC = `#!/bin/bash
{ printf '%s' "$PWD"; printf ' %s' "$@"; printf '\\n'; } >>"$LOG/calls"
env >"$LOG/env.$(wc -l <"$LOG/calls")"
[[ $1 != -o ]] || shift 2
case "$1 $2" in
  "cat config")
    if [[ -n \${FAKE_HANGS:-} ]]; then
      echo 'Stat(<config/>) returned error, retrying after 1.46s: Stat: The specified bucket does not exist' >&2
      sleep 30
    fi
    exit "\${FAKE_CAT_STATUS:-0}" ;;
  "init "*) exit 0 ;;
  "backup "*)
    if [[ -n \${FAKE_NO_SUMMARY:-} ]]; then exit 0; fi
    if [[ -n \${FAKE_BACKUP_FAILS:-} ]]; then
      # As restic 0.18 says a fatal error with --json (seen on the VM).
      echo '{"message_type":"exit_error","code":1,"message":"Fatal: unable to open repository at s3:http://10.0.2.2:9000/b: connection refused\\nIs there a repository at the following location?\\ns3:http://10.0.2.2:9000/b"}' >&2
      exit 1
    fi
    echo '{"message_type":"status","percent_done":1}'
    echo '{"message_type":"summary","files_new":3,"data_added":1234,"total_bytes_processed":2400000,"snapshot_id":"4bd2a3f1c0ffee0011223344556677889900aabbccddeeff0011223344556677"}'
    ;;
  "forget "* | "unlock "*) exit 0 ;;
  "check "*) if [[ -n \${FAKE_CHECK_FAILS:-} ]]; then echo "Fatal: repository contains errors" >&2; exit 1; fi ;;
esac
`;

let dir: string;
let home: string;
let backups: string;
const me = userInfo().username;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gh-offsite-tool-"));
  home = join(dir, "home");
  backups = join(dir, "backups");
  for (const d of ["bin", "log", join("home", OFFSITE_DIR), "backups/gitea-backup-20261207T030000Z-scheduled"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "bin", "restic"), STAND_IN_RESTIC, { mode: 0o755 });
  writeFileSync(join(home, OFFSITE_DIR, "password"), PASSWORD, { mode: 0o600 });
  writeFileSync(join(home, OFFSITE_DIR, "environment"), `AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(backups, "gitea-backup-20261207T030000Z-scheduled", "manifest"), "format=gitea-homelab-backup-1\nreason=scheduled\ngitea_version=1.26.4\n");
  writeFileSync(join(backups, "last-backup"), "name=gitea-backup-20261207T030000Z-scheduled\ncreated=2026-12-07T03:00:00Z\n");
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs CODE after the tool's off-site functions, with the tool's own helpers as the tests need them. */
function tool(code: string, env: Record<string, string> = {}, backend: "s3" | "sftp" = "s3", answerSeconds = 60) {
  const spec = offsiteToolSpec({ repository: backend === "s3" ? "s3:http://10.0.2.2:9000/bucket/gitea" : "sftp://backup@10.0.2.2:2222//srv/r", backend, keep: { daily: 7, weekly: 4 }, check: "weekly" });
  const script = renderScript(
    { purpose: "test", vars: { user: me, home, backup_dir: backups, state_dir: join(dir, "state"), ...offsiteToolVars(spec), offsite_answer_seconds: answerSeconds } },
    sh`
${shellFunctions("die")}
need_root() { :; }
volume_names=(gitea-data)
volume_has_data() { return 1; }
do_restore() { echo "restore from $1"; }
field() {
  local key value
  [[ -r $1 ]] || return 0
  while IFS='=' read -r key value; do if [[ $key == "$2" ]]; then printf '%s\n' "$value"; return 0; fi; done <"$1"
}
${OFFSITE_TOOL_FUNCTIONS}
`,
  );
  return spawnSync("bash", ["-c", `${script}\n${code}`], { encoding: "utf8", env: { PATH: `${join(dir, "bin")}:/usr/sbin:/usr/bin:/sbin:/bin`, LOG: join(dir, "log"), ...env } });
}

const calls = () => readFileSync(join(dir, "log", "calls"), "utf8").trim().split("\n");
const record = () => readFileSync(join(backups, "offsite-status"), "utf8");

describe("the backup tool's off-site functions", () => {
  it("pushes a backup from inside its directory, tagged, then forgets by the policy over all of this forge's snapshots", () => {
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled`);
    expect(run.status, run.stderr).toBe(0);
    expect(calls()).toEqual([
      // Does it answer at all (restic itself would retry an unreachable one for 15 minutes)?
      `${home} cat config`,
      // A lock a killed restic left would stop forget and check (seen with restic 0.18).
      `${home} unlock --quiet`,
      `${backups}/gitea-backup-20261207T030000Z-scheduled backup --json --quiet --tag gitea-homelab --tag reason=scheduled --tag gitea=1.26.4 --tag backup=gitea-backup-20261207T030000Z-scheduled .`,
      `${home} forget --quiet --tag gitea-homelab --group-by  --keep-daily 7 --keep-weekly 4 --prune`,
    ]);
    expect(record()).toContain("push=ok\n");
    expect(record()).toContain("pushed=gitea-backup-20261207T030000Z-scheduled\n");
    expect(record()).toContain("snapshot=4bd2a3f1\n");
    expect(record()).toContain("data_added=1234\n");
    expect(run.stderr).toContain("copied gitea-backup-20261207T030000Z-scheduled off-site: snapshot 4bd2a3f1, 1234 of 2400000 bytes new");
  });

  it("records a push restic reports as done even when it prints no summary line", () => {
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled`, { FAKE_NO_SUMMARY: "1" });
    expect(run.status, run.stderr).toBe(0);
    expect(record()).toMatch(/^push=ok$/m);
    expect(record()).toMatch(/^pushed=gitea-backup-20261207T030000Z-scheduled$/m);
  });

  it("gives restic the password by file and the credentials by environment, never on its command line", () => {
    tool(`offsite_push gitea-backup-20261207T030000Z-scheduled`);
    const environment = readFileSync(join(dir, "log", "env.3"), "utf8");
    expect(environment).toContain(`RESTIC_PASSWORD_FILE=${home}/${OFFSITE_DIR}/password\n`);
    expect(environment).toContain(`AWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`);
    expect(environment).toContain("RESTIC_REPOSITORY=s3:http://10.0.2.2:9000/bucket/gitea\n");
    expect(environment).not.toContain(PASSWORD);
    for (const line of calls()) expect(line).not.toMatch(new RegExp(`${PASSWORD}|${AWS_SECRET.replace(/\//g, "\\/")}`));
  });

  it("refuses a credentials file that names another variable (LD_PRELOAD would run code), before restic runs", () => {
    writeFileSync(join(home, OFFSITE_DIR, "environment"), "LD_PRELOAD=/tmp/evil.so\n");
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled`);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("LD_PRELOAD is not a variable gitea-homelab passes to restic");
    expect(() => calls()).toThrow();
    expect(record()).toContain("push=failed\n");
  });

  it("sftp: ssh is told the key, the pinned known_hosts and batch mode, in restic's sftp.args", () => {
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled`, {}, "sftp");
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const dirOf = `${home}/${OFFSITE_DIR}`;
    expect(calls()[2]).toContain(
      ` -o sftp.args=-F /dev/null -i ${dirOf}/ssh-key -o UserKnownHostsFile=${dirOf}/known_hosts -o HostKeyAlias=gitea-homelab-offsite -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=20 backup `,
    );
  });

  it("keeps the local backup and records a failed push, without failing the backup", () => {
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled || echo "push returned $?"`, { FAKE_BACKUP_FAILS: "1" });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("push returned 1");
    expect(record()).toMatch(/^push=failed$/m);
    expect(record()).toMatch(/^push_error=Fatal: unable to open repository at s3:http:\/\/10.0.2.2:9000\/b: connection refused$/m);
    expect(record()).toMatch(/^push_failed_backup=gitea-backup-20261207T030000Z-scheduled$/m);
    expect(readFileSync(join(backups, "gitea-backup-20261207T030000Z-scheduled", "manifest"), "utf8")).toContain("format=");
  });

  it("sync pushes the newest backup only when the record lacks it, and fails naming the key when it cannot", () => {
    expect(tool(`do_offsite_sync`).stdout).toBe("");
    expect(calls()[2]).toContain(" backup ");
    const again = tool(`do_offsite_sync`);
    expect(again.stdout).toBe("off-site copy up to date: gitea-backup-20261207T030000Z-scheduled\n");
    expect(calls()).toHaveLength(4);
    rmSync(join(backups, "offsite-status"));
    const failed = tool(`do_offsite_sync`, { FAKE_BACKUP_FAILS: "1" });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/gitea-homelab: gitea-homelab:offsiteRepository: could not copy gitea-backup-20261207T030000Z-scheduled off-site: Fatal: unable to open repository/);
  });

  it("opens the repository: initialises it only when restic says it does not exist, and names the key to fix otherwise", () => {
    expect(tool(`do_offsite_init`, { FAKE_CAT_STATUS: "0" }).stdout).toContain("opens");
    expect(calls().map((c) => c.split(" ")[1])).toEqual(["cat"]);
    const made = tool(`do_offsite_init`, { FAKE_CAT_STATUS: "10" });
    expect(made.stdout).toContain("initialised");
    expect(calls().map((c) => c.split(" ")[1])).toEqual(["cat", "cat", "init"]);
    const wrong = tool(`do_offsite_init`, { FAKE_CAT_STATUS: "12" });
    expect([wrong.status, wrong.stderr]).toEqual([1, expect.stringContaining("gitea-homelab:offsitePassword does not open the repository")]);
    const unreachable = tool(`do_offsite_init`, { FAKE_CAT_STATUS: "1" });
    expect([unreachable.status, unreachable.stderr]).toEqual([1, expect.stringContaining("gitea-homelab:offsiteRepository: restic cannot open")]);
    // Never initialised again: only exit 10 made it.
    expect(calls().filter((c) => c.split(" ")[1] === "init")).toHaveLength(1);
  });

  it("gives up on a repository that does not answer within the time limit, with restic's reason, and keeps the backup", () => {
    const started = Date.now();
    const run = tool(`offsite_push gitea-backup-20261207T030000Z-scheduled || echo "push returned $?"`, { FAKE_HANGS: "1" }, "s3", 1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.stdout).toContain("push returned 1");
    expect(record()).toMatch(/^push_error=no answer within the time limit: Stat: The specified bucket does not exist$/m);
    expect(calls()).toHaveLength(1);
    const init = tool(`do_offsite_init`, { FAKE_HANGS: "1" }, "s3", 1);
    expect(init.status).toBe(1);
    expect(init.stderr).toContain("gitea-homelab:offsiteRepository: no answer from s3:http://10.0.2.2:9000/bucket/gitea within 1 seconds");
  });

  it("records the check's result; a failed check fails the timer's run", () => {
    expect(tool(`do_offsite_check`).status).toBe(0);
    expect(calls()[2]).toBe(`${home} check --quiet --read-data-subset 5%`);
    expect(record()).toMatch(/^check=ok$/m);
    const failed = tool(`do_offsite_check`, { FAKE_CHECK_FAILS: "1" });
    expect(failed.status).toBe(1);
    expect(record()).toMatch(/^check=failed$/m);
    expect(record()).toMatch(/^check_error=Fatal: repository contains errors$/m);
  });

  it("restores latest by its tag into a directory the local restore then reads", () => {
    const run = tool(`do_offsite_restore latest`);
    expect(run.status, run.stderr).toBe(0);
    expect(calls()[0]).toBe(`${backups}/.offsite-restore restore latest --tag gitea-homelab --target ${backups}/.offsite-restore --quiet`);
    expect(run.stdout).toContain(`restore from ${backups}/.offsite-restore`);
  });
});
