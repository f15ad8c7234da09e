/**
 * The runner's register and unregister scripts, run with bash in a temp dir: the runner binary,
 * systemctl and (for the failure paths) curl are stubs on PATH; the happy unregister path uses
 * the real curl against a local HTTP server, so the admin credentials curl sends are the ones
 * Gitea would decode, whatever quotes or backslashes the password holds.
 */
import { spawn } from "child_process";
import { createServer, IncomingMessage } from "http";
import { AddressInfo } from "net";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderRunnerRegisterScript, renderRunnerUnregisterScript, runnerCommandStdin, RunnerSettings } from "./render";
import { RUNNER_SETTINGS } from "../../test/helpers/fixtures";
import { requireTool } from "../../test/helpers/scripts";

const TOKEN = "T0ken-for-the-runner-registration-0123456789";
const PASSWORD = `pa"ss\\word 'with' $(quotes)`;

/** Settings whose paths all live in `dir`. */
function settingsIn(dir: string, instanceUrl: string): RunnerSettings {
  return { ...RUNNER_SETTINGS, binaryPath: join(dir, "bin/runner"), configDir: join(dir, "etc"), stateDir: join(dir, "state"), instanceUrl };
}

/** A temp world: stub runner (asks for the token on stdin like the real one), stub systemctl, optional stub curl. */
function world(opts: { stubCurl?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "runner-reg-"));
  const stubs = join(dir, "stubs");
  for (const d of ["bin", "etc", "state", "stubs"]) mkdirSync(join(dir, d), { recursive: true });
  const write = (path: string, text: string) => {
    writeFileSync(path, text);
    chmodSync(path, 0o755);
  };
  // The stub runner: argv to a log; the token read from stdin, as the real one prompts for it.
  write(
    join(dir, "bin/runner"),
    `#!/bin/bash
printf '%s\\n' "$*" >>"${dir}/runner.argv"
read -r token
[[ $token == "${TOKEN}" ]] || { echo "Failed to register runner: token rejected" >&2; exit 1; }
while [[ $# -gt 0 && $1 != --instance ]]; do shift; done
# As the runner writes it: the instance it registered with is "address".
printf '{"id": 42, "uuid": "u", "name": "n", "token": "runner-own-token", "address": "%s"}\n' "$2" >"${dir}/state/.runner"
echo "Runner registered successfully."
`,
  );
  write(join(stubs, "systemctl"), `#!/bin/bash\nprintf '%s\\n' "$*" >>"${dir}/systemctl.log"\n[[ $1 != is-active ]] || [[ -f "${dir}/state/.runner" ]]\n`);
  if (opts.stubCurl) write(join(stubs, "curl"), `#!/bin/bash\nprintf '%s\\n' "$*" >>"${dir}/curl.argv"\ncat >>"${dir}/curl.stdin"\nprintf 000\nexit 7\n`);
  // Asynchronous, so the HTTP server in this process can answer while the script runs.
  const run = (script: string, stdin: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn("bash", ["-c", script], { cwd: dir, env: { PATH: `${stubs}:${process.env.PATH}`, HOME: dir } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (status) => resolve({ status, stdout, stderr }));
      child.stdin.end(stdin);
    });
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : "");
  return { dir, run, read };
}

describe("runner registration", () => {
  it("gives the token to the runner on its stdin, never in its argv, and records the fingerprint", async () => {
    const w = world();
    const s = settingsIn(w.dir, "http://gitea.lan:3000/");
    const result = await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN, { username: "root-admin", password: PASSWORD }));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(w.read("runner.argv")).toBe(`register --config ${w.dir}/etc/config.yaml --instance http://gitea.lan:3000/ --name wsl-runner --labels ${s.labels.join(",")}\n`);
    expect(w.read("runner.argv")).not.toContain(TOKEN);
    expect(w.read("state/.runner")).toContain('"id": 42');
    expect(w.read("state/.runner.fingerprint")).not.toBe("");
    // Registered with the same fingerprint: the runner is not asked again.
    expect((await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN))).stdout).toContain("already registered");
    expect(w.read("runner.argv").split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("a refused token fails with the runner's own words, naming the setting", async () => {
    const w = world();
    const result = await w.run(renderRunnerRegisterScript(settingsIn(w.dir, "http://gitea.lan:3000/"), 30), runnerCommandStdin("wrong-token-0123456789-0123456789"));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/registering with http:\/\/gitea\.lan:3000\/ failed .*gitea-homelab:instanceUrl.*token rejected/s);
    expect(existsSync(join(w.dir, "state/.runner"))).toBe(false);
  });
});

describe("runner unregistration (the register command's delete)", () => {
  const requests: Array<{ method?: string; url?: string; authorization?: string }> = [];
  let server: ReturnType<typeof createServer>;
  let url = "";
  beforeAll(async () => {
    requireTool("curl", "curl");
    server = createServer((req: IncomingMessage, res) => {
      requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      res.statusCode = 204;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => server?.close());

  it("deletes the runner by its id through the admin API, the credentials exact and only on curl's stdin", async () => {
    const w = world();
    const s = settingsIn(w.dir, url);
    expect((await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN))).status).toBe(0);
    const result = await w.run(renderRunnerUnregisterScript(s), runnerCommandStdin(TOKEN, { username: "root-admin", password: PASSWORD }));
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("runner wsl-runner (id 42) removed");
    expect(requests).toEqual([{ method: "DELETE", url: "/api/v1/admin/actions/runners/42", authorization: `Basic ${Buffer.from(`root-admin:${PASSWORD}`).toString("base64")}` }]);
    expect(existsSync(join(w.dir, "state/.runner"))).toBe(false);
    expect(w.read("systemctl.log")).toContain("stop act_runner.service");
  });

  it("registering again (new labels) first removes the old record from Gitea", async () => {
    const w = world();
    const s = settingsIn(w.dir, url);
    const admin = { username: "root-admin", password: PASSWORD };
    expect((await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN, admin))).status).toBe(0);
    requests.length = 0;
    const again = await w.run(renderRunnerRegisterScript({ ...s, labels: ["other:host"] }, 30), runnerCommandStdin(TOKEN, admin));
    expect(again.status).toBe(0);
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(["DELETE /api/v1/admin/actions/runners/42"]);
    expect(w.read("runner.argv").split("\n").filter(Boolean)).toHaveLength(2);
    expect(w.read("state/.runner")).toContain('"id": 42');
  });

  it("registering with another instance leaves the old record alone (that id may be another runner there) and says so", async () => {
    const w = world();
    const s = settingsIn(w.dir, url);
    const admin = { username: "root-admin", password: PASSWORD };
    expect((await w.run(renderRunnerRegisterScript({ ...s, instanceUrl: "http://old-gitea.lan:3000/" }, 30), runnerCommandStdin(TOKEN, admin))).status).toBe(0);
    requests.length = 0;
    const moved = await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN, admin));
    expect(moved.status).toBe(0);
    expect(requests).toEqual([]);
    expect(moved.stderr).toMatch(/was registered with http:\/\/old-gitea\.lan:3000\/, not http:\/\/127\.0\.0\.1:\d+\/; delete it there/);
    expect(w.read("state/.runner")).toContain(`"address": "${url}"`);
  });

  it("without admin credentials, or when Gitea does not answer, warns and still removes the registration", async () => {
    const w = world({ stubCurl: true });
    const s = settingsIn(w.dir, "http://gitea.lan:3000/");
    expect((await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN))).status).toBe(0);
    const noAdmin = await w.run(renderRunnerUnregisterScript(s), runnerCommandStdin(TOKEN));
    expect(noAdmin.status).toBe(0);
    expect(noAdmin.stderr).toMatch(/stays listed in Gitea .*Site Administration/);
    expect(w.read("curl.argv")).toBe("");

    expect((await w.run(renderRunnerRegisterScript(s, 30), runnerCommandStdin(TOKEN))).status).toBe(0);
    const unreachable = await w.run(renderRunnerUnregisterScript(s), runnerCommandStdin(TOKEN, { username: "root-admin", password: PASSWORD }));
    expect(unreachable.status).toBe(0);
    expect(unreachable.stderr).toMatch(/answered '000'.*Site Administration/);
    expect(w.read("curl.argv")).not.toContain(PASSWORD);
    expect(w.read("curl.stdin")).toContain("user = ");
    expect(existsSync(join(w.dir, "state/.runner"))).toBe(false);
  });
});
