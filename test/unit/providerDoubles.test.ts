/**
 * The e2e suite's provider TEST DOUBLES (test/e2e/doubles/), exercised as provider objects, with
 * no CLI and no sshd: a fake SSH runner records what would run where. (vitest's unit run only
 * picks up test/unit, hence this file lives here.)
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { specialSecretSig, specialSigKey, unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { sshRun } from "../e2e/harness/ssh";
import type { Connection, RunResult } from "../e2e/harness/ssh";
import { collectedDiagnostics } from "../e2e/doubles/diagnostics";
import { commandProviderDouble, goQuote } from "../e2e/doubles/commandProviderDouble";
import { writeLauncher } from "../e2e/doubles/install";
import { randomProviderDouble } from "../e2e/doubles/randomProviderDouble";
import { isSecret } from "../e2e/doubles/wire";

const URN = "urn:pulumi:dev::proj::command:remote:Command::web";
const PW_URN = "urn:pulumi:dev::proj::random:index/randomPassword:RandomPassword::pw";
const secret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });
const conn = { host: "10.0.0.5", port: 22, user: "root", privateKey: "KEY", dialErrorLimit: 10, perDialTimeout: 15 };

interface Ran {
  conn: Connection;
  commandLine: string;
  stdin?: string;
}

/** A fake `sshRun`: answers each call with the next of `results` (the last one repeats). */
function fakeSsh(results: Array<Partial<RunResult>> = [{}]) {
  const ran: Ran[] = [];
  const options: Array<{ markSession?: boolean } | undefined> = [];
  const ssh = async (c: Connection, commandLine: string, stdin?: string, opts?: { markSession?: boolean }): Promise<RunResult> => {
    ran.push({ conn: c, commandLine, stdin });
    options.push(opts);
    const r = results[Math.min(ran.length - 1, results.length - 1)];
    return { code: 0, stdout: `ran ${commandLine}\n`, stderr: "", ms: 1, bytesSent: 0, ...r };
  };
  return { ran, options, ssh };
}

function double(results?: Array<Partial<RunResult>>) {
  const fake = fakeSsh(results);
  const logged: Parameters<typeof collectedDiagnostics>[0] = [];
  const sleeps: number[] = [];
  const p = commandProviderDouble({ ssh: fake.ssh, diagnostics: collectedDiagnostics(logged), sleep: async (ms) => void sleeps.push(ms) });
  return { p, ran: fake.ran, options: fake.options, logged, sleeps };
}

describe("command provider double: diff", () => {
  const olds = { connection: conn, create: "install", delete: "remove", stdin: "s", triggers: ["a"], stdout: "out", stderr: "" };

  it("replaces when the triggers change", async () => {
    const { p } = double();
    const d = await p.diff!("id", URN, olds, { ...olds, stdout: undefined, stderr: undefined, triggers: ["b"] });
    expect(d).toMatchObject({ changes: true, replaces: ["triggers"] });
  });

  it("updates when another input changes", async () => {
    const { p } = double();
    const d = await p.diff!("id", URN, olds, { ...olds, create: "install v2" });
    expect(d).toMatchObject({ changes: true, replaces: [] });
  });

  it("finds no change when only the outputs differ, and a secret equals its plain value", async () => {
    const { p } = double();
    const { stdout: _o, stderr: _e, ...inputs } = olds;
    const d = await p.diff!("id", URN, olds, { ...inputs, connection: secret(conn), stdin: secret("s") });
    expect(d).toMatchObject({ changes: false, replaces: [] });
  });

  it("counts a value still unknown (preview) as a change", async () => {
    const { p } = double();
    const d = await p.diff!("id", URN, olds, { ...olds, create: unknownValue });
    expect(d.changes).toBe(true);
  });
});

describe("command provider double: check", () => {
  it("fills the connection's defaults and makes it secret", async () => {
    const { p } = double();
    const r = await p.check!(URN, {}, { connection: { host: "h" }, create: "x" });
    expect(r.failures).toEqual([]);
    expect(isSecret(r.inputs.connection)).toBe(true);
    expect(r.inputs.connection.value).toEqual({ host: "h", user: "root", port: 22, dialErrorLimit: 10, perDialTimeout: 15 });
  });

  it("refuses what it does not implement, by name", async () => {
    const { p } = double();
    const r = await p.check!(URN, {}, { connection: secret({ host: "h", password: "pw" }), create: "x", environment: { A: "1" } });
    expect(r.failures!.map((f) => f.property).sort()).toEqual(["connection.password", "environment"]);
    expect(r.failures!.every((f) => f.reason.includes("double"))).toBe(true);
  });

  it("leaves a connection not yet known as it is", async () => {
    const { p } = double();
    const r = await p.check!(URN, {}, { connection: secret(unknownValue), create: "x" });
    expect(r.failures).toEqual([]);
    expect(r.inputs.connection).toEqual(secret(unknownValue));
  });
});

describe("command provider double: create, update, delete", () => {
  it("create runs `create` with stdin, secrets revealed, and returns the inputs (still secret) plus the output", async () => {
    const { p, ran } = double([{ stdout: "done\n", stderr: "note\n" }]);
    const inputs = { connection: secret(conn), create: "install", stdin: secret("top secret") };
    const r = await p.create!(URN, inputs);
    expect(ran).toEqual([{ conn: expect.objectContaining({ host: "10.0.0.5", privateKey: "KEY" }), commandLine: "install", stdin: "top secret" }]);
    expect(r.outs).toEqual({ ...inputs, stdout: "done", stderr: "note" });
    expect(r.id).toMatch(/^web[0-9a-f]{8}$/);
  });

  it("a non-zero exit fails with the real provider's text", async () => {
    const { p } = double([{ code: 3, stdout: "out\n", stderr: "err\n" }]);
    await expect(p.create!(URN, { connection: conn, create: 'echo "x"; exit 3' })).rejects.toThrow('Process exited with status 3: running "echo \\"x\\"; exit 3":\nout\nerr\n');
  });

  it("update runs `update` (else `create`) with the NEW connection and stdin", async () => {
    const { p, ran } = double();
    const olds = { connection: conn, create: "c1", stdin: "old", stdout: "prev", stderr: "", addPreviousOutputInEnv: false };
    const news = { connection: { ...conn, host: "10.0.0.6" }, create: "c2", update: "u2", stdin: "new", addPreviousOutputInEnv: false };
    const r = await p.update!("id", URN, olds, news);
    expect(ran).toEqual([{ conn: expect.objectContaining({ host: "10.0.0.6" }), commandLine: "u2", stdin: "new" }]);
    expect(r.outs).toMatchObject({ update: "u2", stdout: "ran u2" });
    const { update: _u, ...noUpdate } = news;
    await p.update!("id", URN, olds, noUpdate);
    expect(ran[1].commandLine).toBe("c2");
  });

  it("delete runs the STORED delete with the stored connection and stdin; none stored, nothing runs", async () => {
    const { p, ran } = double();
    await p.delete!("id", URN, { connection: secret(conn), create: "c", delete: "remove it", stdin: secret("stored"), stdout: "", stderr: "", addPreviousOutputInEnv: false });
    expect(ran).toEqual([{ conn: expect.objectContaining({ host: "10.0.0.5" }), commandLine: "remove it", stdin: "stored" }]);
    await p.delete!("id", URN, { connection: conn, create: "c", stdout: "", stderr: "" });
    expect(ran).toHaveLength(1);
  });

  it("warns, naming itself, that the previous output is not in the environment unless told not to", async () => {
    const { p, logged } = double();
    await p.update!("id", URN, { connection: conn, create: "c", stdout: "prev", stderr: "" }, { connection: conn, create: "c2" });
    expect(logged.filter((l) => l.severity === "warning").map((l) => l.message)).toEqual([expect.stringMatching(/^command provider double: PULUMI_COMMAND_STDOUT/)]);
  });

  it("logs the output unless `logging` is none", async () => {
    const shown = double([{ stdout: "visible\n" }]);
    await shown.p.create!(URN, { connection: conn, create: "c" });
    expect(shown.logged).toContainEqual({ severity: "info", message: "visible", urn: URN, ephemeral: true });
    const hidden = double([{ stdout: "hidden\n" }]);
    await hidden.p.create!(URN, { connection: conn, create: "c", logging: "none" });
    expect(hidden.logged).toEqual([]);
  });

  it("retries a dial failure up to dialErrorLimit, then fails as the real provider", async () => {
    const refused = { code: 255, stdout: "", stderr: "ssh: connect to host 10.0.0.5 port 22: Connection refused\r\n" };
    const ok = double([refused, refused, { code: 0, stdout: "up\n" }]);
    await expect(ok.p.create!(URN, { connection: { ...conn, dialErrorLimit: 2 }, create: "c" })).resolves.toMatchObject({ outs: { stdout: "up" } });
    expect(ok.sleeps).toEqual([150, 225]);
    const down = double([refused]);
    await expect(down.p.create!(URN, { connection: { ...conn, dialErrorLimit: 2 }, create: "c" })).rejects.toThrow("after 2 failed attempts: ssh: connect to host 10.0.0.5 port 22: Connection refused");
    expect(down.ran).toHaveLength(3);
  });

  it("never reruns a script whose session started, even when the connection then drops like a failed dial", async () => {
    const { p, ran, options } = double([{ code: 255, stdout: "", stderr: "Connection reset by 10.0.0.5 port 22\r\n", started: true }]);
    await expect(p.create!(URN, { connection: conn, create: "c" })).rejects.toThrow(/^Process exited with status 255/);
    expect(ran).toHaveLength(1);
    expect(options).toEqual([{ markSession: true }]);
  });

  it("fails every command, without dialling, when SSH_AUTH_SOCK names no agent (as the real provider does)", async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = "/nonexistent/agent.sock";
    try {
      const { p, ran } = double();
      await expect(p.create!(URN, { connection: conn, create: "c" })).rejects.toThrow("dial unix /nonexistent/agent.sock: connect: no such file or directory");
      expect(ran).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it("never reruns a script whose own exit status is 255", async () => {
    const { p, ran } = double([{ code: 255, stdout: "half done\n", stderr: "" }]);
    await expect(p.create!(URN, { connection: conn, create: "c" })).rejects.toThrow(/^Process exited with status 255/);
    expect(ran).toHaveLength(1);
  });
});

describe("command provider double: command:local:run", () => {
  it("runs /bin/sh -c with stdin and returns the inputs plus stdout", async () => {
    const { p } = double();
    const inputs = { command: 'printf hi; printf "+%s" "$(cat)"', stdin: secret("in") };
    const r = await p.invoke!("command:local:run", inputs);
    expect(r.outputs).toEqual({ ...inputs, stdout: "hi+in", stderr: "" });
  });

  it("fails on a non-zero exit as the real provider does", async () => {
    const { p } = double();
    await expect(p.invoke!("command:local:run", { command: "echo out; exit 3" })).rejects.toThrow('exit status 3: running "echo out; exit 3":\nout\n');
  });
});

describe("random provider double: RandomPassword", () => {
  const p = randomProviderDouble();

  it("honours length and special", async () => {
    const { inputs } = await p.check!(PW_URN, {}, { length: 48, special: false });
    expect(inputs).toMatchObject({ length: 48, special: false, upper: true, lower: true, numeric: true, number: true, minSpecial: 0 });
    const { outs, id } = await p.create!(PW_URN, inputs);
    expect(id).toBe("none");
    expect(outs.result).toMatch(/^[A-Za-z0-9]{48}$/);
  });

  it("honours the minimums and overrideSpecial", async () => {
    const { inputs } = await p.check!(PW_URN, {}, { length: 12, overrideSpecial: "#", minSpecial: 4, minNumeric: 4, upper: false, lower: false });
    const { outs } = await p.create!(PW_URN, inputs);
    expect(outs.result).toMatch(/^[0-9#]{12}$/);
    expect(outs.result.replace(/[^#]/g, "").length).toBeGreaterThanOrEqual(4);
    expect(outs.result.replace(/[^0-9]/g, "").length).toBeGreaterThanOrEqual(4);
  });

  it("refuses what the real provider refuses", async () => {
    const mismatch = await p.check!(PW_URN, {}, { length: 8, number: false, numeric: true });
    expect(mismatch.failures!.map((f) => f.property)).toEqual(["numeric"]);
    const short = await p.check!(PW_URN, {}, { length: 3, minUpper: 2, minLower: 2 });
    expect(short.failures!.map((f) => f.property)).toEqual(["length"]);
  });

  it("replaces on any input change, and only then", async () => {
    const { inputs } = await p.check!(PW_URN, {}, { length: 24 });
    const { outs } = await p.create!(PW_URN, inputs);
    expect(await p.diff!("none", PW_URN, outs, inputs)).toMatchObject({ changes: false, replaces: [] });
    expect(await p.diff!("none", PW_URN, outs, { ...inputs, length: 25 })).toMatchObject({ changes: true, replaces: ["length"] });
  });
});

describe("provider doubles: launcher and quoting", () => {
  it("writes an executable launcher that says it is a test double", () => {
    const dir = mkdtempSync(join(tmpdir(), "doubles-"));
    const path = writeLauncher(dir, "command");
    const text = readFileSync(path, "utf8");
    expect(text).toMatch(/^#!\/bin\/sh\n# gitea-homelab provider TEST DOUBLE/);
    expect(text).toContain(`exec '${process.execPath}' '--import'`);
    expect(text).toMatch(/commandProviderDouble\.ts' "\$@"\n$/);
    expect(statSync(path).mode & 0o777).toBe(0o755);
  });

  it("quotes a script as Go's %q does", () => {
    expect(goQuote('a "b"\\\n\t\x01é')).toBe('"a \\"b\\"\\\\\\n\\t\\x01é"');
  });
});

describe("the doubles' OpenSSH (harness sshRun)", () => {
  /** A stand-in ssh on PATH: records its arguments, answers as a shell that started would. */
  function withFakeSsh<T>(run: (dir: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), "gh-fake-ssh-"));
    writeFileSync(join(dir, "ssh"), `#!/bin/bash\nprintf '%s\\n' "$@" >"${dir}/argv"\nlast=\${!#}\n[[ $last == echo\\ gitea-homelab-ssh-session-started* ]] && echo gitea-homelab-ssh-session-started >&2\necho remote-error >&2\nexit 3\n`, { mode: 0o755 });
    const saved = { PATH: process.env.PATH, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
    process.env.PATH = `${dir}:${saved.PATH}`;
    delete process.env.SSH_AUTH_SOCK;
    return run(dir).finally(() => {
      process.env.PATH = saved.PATH;
      if (saved.SSH_AUTH_SOCK !== undefined) process.env.SSH_AUTH_SOCK = saved.SSH_AUTH_SOCK;
    });
  }

  it("uses only the given key or the agent, never ssh_config or ~/.ssh, and tells a started session from a dial", async () => {
    await withFakeSsh(async (dir) => {
      const r = await sshRun({ host: "10.0.0.5", port: 22, user: "root" }, "true", undefined, { markSession: true });
      const argv = readFileSync(join(dir, "argv"), "utf8").split("\n");
      expect(argv.slice(0, 2)).toEqual(["-F", "/dev/null"]);
      expect(argv).not.toContain("-i");
      expect(argv.find((a) => a.startsWith("IdentityFile="))).toMatch(/\/no-key$/);
      expect(argv).toContain("IdentityAgent=none");
      expect(r).toMatchObject({ code: 3, stderr: "remote-error\n", started: true });
      const keyed = await sshRun({ host: "10.0.0.5", port: 22, user: "root", privateKey: "KEY" }, "true");
      expect(readFileSync(join(dir, "argv"), "utf8").split("\n")).toContain("-i");
      expect(keyed.started).toBeUndefined();
    });
  });
});
