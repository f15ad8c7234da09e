/**
 * The runner's rename (act_runner 0.x to gitea-runner 1.x): a stack that took the old default
 * binary name gets the new one at its next up, under the same unit, config and registration.
 * The install and remove scripts run with bash in a temp dir whose paths stand in for the
 * host's (the unit directory too); `systemctl` is a stub that logs, `install` a stub that copies.
 */
import { spawnSync } from "child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterEach, describe, expect, it } from "vitest";
import { renderRunnerInstallScript, renderRunnerRemoveScript, renderRunnerUnit, runnerExecStartLine, RunnerSettings } from "./render";
import { RUNNER_SETTINGS } from "../../test/helpers/fixtures";
import { expectCleanScript } from "../../test/helpers/scripts";

const worlds: string[] = [];
afterEach(() => {
  for (const dir of worlds.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A host in a temp dir: the runner gitea-runner replacing act_runner beside it, copied from the host's own file. */
function world() {
  const dir = mkdtempSync(join(tmpdir(), "runner-rename-"));
  worlds.push(dir);
  for (const d of ["bin", "etc", "state", "units", "stubs", "src"]) mkdirSync(join(dir, d));
  const write = (path: string, text: string, mode = 0o644) => {
    writeFileSync(join(dir, path), text);
    chmodSync(join(dir, path), mode);
  };
  write("stubs/systemctl", `#!/bin/bash\nprintf '%s\\n' "$*" >>"${dir}/systemctl.log"\n[[ $1 != is-active ]]\n`, 0o755);
  // install -d DIR... or install -m MODE -o OWNER -g GROUP SRC DEST: owners are the host's business.
  write("stubs/install", `#!/bin/bash\nif [[ $1 == -d ]]; then shift 3; mkdir -p "$@"; exit; fi\ncp "$7" "$8"\nchmod "$2" "$8"\n`, 0o755);
  write("src/gitea-runner", '#!/bin/bash\necho "gitea-runner version v1.0.8"\n', 0o755);
  const settings: RunnerSettings = {
    ...RUNNER_SETTINGS,
    binaryPath: join(dir, "bin/gitea-runner"),
    replacedBinaryPath: join(dir, "bin/act_runner"),
    source: { sourcePath: join(dir, "src/gitea-runner") },
    configDir: join(dir, "etc"),
    stateDir: join(dir, "state"),
  };
  const unitFile = join(dir, "units", settings.serviceName);
  const run = (script: string) => {
    const result = spawnSync("bash", ["-c", script.split("/etc/systemd/system/").join(`${dir}/units/`)], {
      cwd: dir,
      env: { PATH: `${join(dir, "stubs")}:${process.env.PATH}`, HOME: dir },
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return result.stdout;
  };
  return { dir, settings, unitFile, write, run };
}

describe("a runner binary replaced under the same unit", () => {
  it("removes the old binary once the unit that ran it runs the new one", () => {
    const w = world();
    const old = w.settings.replacedBinaryPath!;
    w.write("bin/act_runner", "#!/bin/bash\necho act_runner version v0.2.13\n", 0o755);
    // What an earlier up wrote: the same unit, running act_runner.
    writeFileSync(w.unitFile, renderRunnerUnit({ ...w.settings, binaryPath: old }));
    const stdout = w.run(renderRunnerInstallScript(w.settings));
    expect(existsSync(old)).toBe(false);
    expect(stdout).toContain(`removed ${old}, which ${w.settings.serviceName} ran before`);
    expect(readFileSync(w.settings.binaryPath, "utf8")).toContain("gitea-runner version v1.0.8");
    expect(readFileSync(w.unitFile, "utf8").split("\n")).toContain(runnerExecStartLine(w.settings));
    expect(stdout).toContain("runner binary version: gitea-runner version v1.0.8");
    // A second run finds nothing to remove.
    expect(w.run(renderRunnerInstallScript(w.settings))).not.toContain("removed");
  });

  it("leaves a file of that name alone when the unit did not run it", () => {
    for (const unit of [undefined, "another binary", "edited arguments"]) {
      const w = world();
      const old = w.settings.replacedBinaryPath!;
      w.write("bin/act_runner", "someone else's act_runner\n", 0o755);
      if (unit === "another binary") writeFileSync(w.unitFile, renderRunnerUnit({ ...w.settings, binaryPath: join(w.dir, "bin/other") }));
      if (unit === "edited arguments") writeFileSync(w.unitFile, renderRunnerUnit({ ...w.settings, binaryPath: old }).replace(" daemon --config ", " daemon --debug --config "));
      const stdout = w.run(renderRunnerInstallScript(w.settings));
      expect(readFileSync(old, "utf8"), String(unit)).toBe("someone else's act_runner\n");
      expect(stdout).not.toContain("removed");
    }
  });

  it("destroy removes the old binary too when the unit still runs it (no up since the new default)", () => {
    const w = world();
    const old = w.settings.replacedBinaryPath!;
    w.write("bin/act_runner", "old\n", 0o755);
    writeFileSync(w.unitFile, renderRunnerUnit({ ...w.settings, binaryPath: old }));
    w.run(renderRunnerRemoveScript(w.settings));
    expect([existsSync(old), existsSync(w.unitFile), existsSync(w.settings.configDir)]).toEqual([false, false, false]);
    // And keeps a file the unit did not run.
    const w2 = world();
    w2.write("bin/act_runner", "someone else's\n", 0o755);
    writeFileSync(w2.unitFile, renderRunnerUnit(w2.settings));
    w2.run(renderRunnerRemoveScript(w2.settings));
    expect(existsSync(w2.settings.replacedBinaryPath!)).toBe(true);
  });

  it("renders nothing of it without a replaced binary: the scripts of such a stack are unchanged", () => {
    const { replacedBinaryPath: _, ...plain } = world().settings;
    for (const render of [renderRunnerInstallScript, renderRunnerRemoveScript]) {
      expect(render(plain)).not.toMatch(/replaced/);
      expect(render({ ...plain, replacedBinaryPath: plain.binaryPath })).toBe(render(plain));
    }
  });

  it("passes bash -n and shellcheck", () => {
    const { settings } = world();
    expectCleanScript(renderRunnerInstallScript(settings));
    expectCleanScript(renderRunnerRemoveScript(settings));
  });
});
