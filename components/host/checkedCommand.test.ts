import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, statSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { renderHostCleanupScript } from "./preflight";
import { appliedDigest, foldDrift, foldedMarker, markerLabel, parseRecord, renderStateRecordScript } from "./checkedCommand";
import { asRootCommand, sh } from "../render/shell";
import { expectCleanScript } from "../../test/helpers/scripts";

const DIGEST = appliedDigest("script", "stdin");
const CLOSED = "firewall 4111/tcp: closed, expected open";

describe("folding drift into a checked command", () => {
  it("on a first converge folds what is missing, and never calls it drift", () => {
    expect(foldDrift([], undefined, DIGEST)).toEqual({ marker: { check: 0, text: "in sync" }, hostDrifted: false });
    expect(foldDrift([CLOSED], undefined, DIGEST)).toEqual({ marker: { check: 1, text: CLOSED }, hostDrifted: false });
  });

  it("reproduces the recorded marker while the host is as applied, so a repaired host previews clean", () => {
    expect(foldDrift([], { check: 3, text: CLOSED, applied: DIGEST }, DIGEST)).toEqual({ marker: { check: 3, text: CLOSED }, hostDrifted: false });
  });

  it("makes a new marker when the host changed since this very command applied, even the same drift as last time", () => {
    const first = foldDrift([CLOSED], { check: 0, text: "in sync", applied: DIGEST }, DIGEST);
    expect(first).toEqual({ marker: { check: 1, text: CLOSED }, hostDrifted: true });
    const again = foldDrift([CLOSED], { ...first.marker, applied: DIGEST }, DIGEST);
    expect(again).toEqual({ marker: { check: 2, text: CLOSED }, hostDrifted: true });
    expect(foldDrift(["a", "b"], { check: 0, text: "in sync", applied: DIGEST }, DIGEST).marker.text).toBe("a; b");
  });

  it("does not call a config change drift: the command changes anyway, the marker stays", () => {
    const newConfig = appliedDigest("script for port 4112", "stdin");
    expect(foldDrift(["firewall 4112/tcp: closed, expected open"], { check: 2, text: "in sync", applied: DIGEST }, newConfig)).toEqual({
      marker: { check: 2, text: "in sync" },
      hostDrifted: false,
    });
    // Records from before digests were kept count the same way.
    expect(foldDrift([CLOSED], parseRecord("4 in sync"), DIGEST)).toEqual({ marker: { check: 4, text: "in sync" }, hostDrifted: false });
  });

  it("tells a change of stdin from none, without keeping the stdin", () => {
    expect(appliedDigest("script", "key=1")).not.toBe(appliedDigest("script", "key=2"));
    expect(appliedDigest("script", undefined)).toBe(appliedDigest("script", ""));
    expect(appliedDigest("script", "s3cret")).toMatch(/^[0-9a-f]{64}$/);
  });

  it("treats an unreadable record as none, and keeps markers on one bounded line", () => {
    expect(parseRecord("x in sync")).toBeUndefined();
    expect(parseRecord("")).toBeUndefined();
    expect(parseRecord(`sha256:${DIGEST} 2 ${CLOSED}`)).toEqual({ check: 2, text: CLOSED, applied: DIGEST });
    expect(foldDrift(["multi\nline\u0007text"], { check: 0, text: "in sync", applied: DIGEST }, DIGEST).marker.text).toBe("multi line text");
    expect(foldDrift(["x".repeat(2000)], undefined, DIGEST).marker.text.length).toBeLessThanOrEqual(480);
  });

  it("records marker and digest with a script that quotes them, and reads them back", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-record-"));
    const marker = { check: 2, text: "it's $(rm -rf /) `x`" };
    const script = renderStateRecordScript(`${dir}/state/server`, "gitea-http-port", marker, DIGEST);
    expectCleanScript(script);
    // The marker holds config values: a quoted variable, never a comment.
    expect(script).toContain("host_state_before_this_converge='2 it'\\''s $(rm -rf /) `x`'");
    expect(foldedMarker(asRootCommand(sh`true`, { after: script, label: markerLabel(marker) }).command)).toEqual(marker);
    expect(spawnSync("bash", ["-c", script]).status).toBe(0);
    expect(parseRecord(readFileSync(`${dir}/state/server/gitea-http-port`, "utf8").trimEnd())).toEqual({ ...marker, applied: DIGEST });
    expect(statSync(`${dir}/state/server`).mode & 0o777).toBe(0o700);
    expect(() => renderStateRecordScript("/tmp/r", "a/b", marker, DIGEST)).toThrow();
    expect(() => renderStateRecordScript("/tmp/r", "a", marker, "not-a-digest")).toThrow();
  });

  it("cleans the records up on destroy with a strict script", () => {
    expectCleanScript(renderHostCleanupScript("/var/lib/gitea-homelab/state/server"));
  });

  it("runs the record script only after the converge script succeeded", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-after-"));
    const after = `touch ${dir}/recorded`;
    const run = (script: string, payload?: string) => {
      const invocation = asRootCommand(script, { after, payload });
      return spawnSync("sh", ["-c", invocation.command], { input: invocation.stdin, encoding: "utf8" });
    };
    expect(run("exit 3").status).toBe(3);
    expect(spawnSync("test", ["-e", `${dir}/recorded`]).status).toBe(1);
    // set -e stops the script at the failing command, and nothing is recorded.
    expect(run(`set -e\nfalse\ntouch ${dir}/went-on`).status).toBe(1);
    expect(spawnSync("test", ["-e", `${dir}/went-on`]).status).toBe(1);
    expect(spawnSync("test", ["-e", `${dir}/recorded`]).status).toBe(1);
    const ok = run('read -r secret; echo "got $secret"', "s3cret\n");
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe("got s3cret\n");
    expect(spawnSync("test", ["-e", `${dir}/recorded`]).status).toBe(0);
  });
});
