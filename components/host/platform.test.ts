/**
 * Alpine (OpenRC) hosts. Alpine packages and images cannot be fetched here, so nothing runs on
 * a real Alpine host: the rendered files are checked, shellchecked for the shell that runs
 * them, and the POSIX sh parts are run under busybox ash, Alpine's /bin/sh.
 */
import { spawnSync } from "child_process";
import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./configError";
import { decidePlatform, HOST_FACTS_KEY, HOST_FACTS_SH, osFamily } from "./platform";
import { parseProbeSession, renderProbeRemoteCommand } from "./probeSession";
import { BUSYBOX, busyboxPath, expectCleanPosix } from "../../test/helpers/busybox";
import { ALPINE, FEDORA } from "../../test/helpers/fixtures";

const CHOICES = { unitStyle: "quadlet", firewall: "auto" } as const;

describe("host OS detection", () => {
  it("reads Alpine, Fedora and Debian families from os-release's ID and ID_LIKE", () => {
    expect(osFamily("alpine", "")).toBe("alpine");
    expect(osFamily("fedora", "")).toBe("fedora");
    expect(osFamily("rocky", "rhel centos fedora")).toBe("fedora");
    expect(osFamily("ubuntu", "debian")).toBe("debian");
    expect(osFamily("arch", "")).toBe("unknown");
  });

  it("decides every platform value at once from the session's host facts and the stack's choices", () => {
    expect(decidePlatform({ os_id: "alpine", os_like: "", init: "openrc" }, CHOICES)).toEqual(ALPINE);
    expect(decidePlatform({ os_id: "fedora", init: "systemd" }, CHOICES)).toEqual(FEDORA);
    expect(decidePlatform({ os_id: "ubuntu", os_like: "debian", init: "systemd" }, { unitStyle: "service", firewall: "none" })).toEqual({
      family: "debian",
      osId: "ubuntu",
      packageManager: "apt",
      init: "systemd",
      unitStyle: "service",
      firewall: "none",
    });
  });

  it("gives an OpenRC host an OpenRC service whatever unitStyle says, and leaves its firewall alone under auto", () => {
    const alpine = { os_id: "alpine", init: "openrc" };
    expect(decidePlatform(alpine, { unitStyle: "service", firewall: "auto" }).unitStyle).toBe("openrc");
    expect(decidePlatform(alpine, { unitStyle: "quadlet", firewall: "auto" }).firewall).toBe("none");
    expect(decidePlatform(alpine, { unitStyle: "quadlet", firewall: "firewalld" }).firewall).toBe("firewalld");
    expect(decidePlatform({ os_id: "fedora", init: "systemd" }, { unitStyle: "quadlet", firewall: "none" }).firewall).toBe("none");
  });

  it("refuses, naming the setting, a host it cannot run on, before anything changes", () => {
    const refused = (facts: Record<string, string> | undefined, choices: Parameters<typeof decidePlatform>[1] = CHOICES) => {
      try {
        decidePlatform(facts, choices);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.join("\n");
      }
      throw new Error("not refused");
    };
    expect(refused({ os_id: "arch", init: "systemd" })).toMatch(/^gitea-homelab:host: unsupported OS 'arch'/);
    expect(refused(undefined)).toMatch(/unsupported OS 'unknown'/);
    expect(refused({ os_id: "debian", init: "<html>" })).toMatch(/systemd is not running as PID 1 .*PID 1: <html>/);
    expect(refused({ os_id: "fedora", init: "init" }, { ...CHOICES, systemdAdvice: "set [boot] systemd=true" })).toMatch(/set \[boot\] systemd=true$/);
    expect(refused({ os_id: "alpine", init: "busybox" })).toMatch(/no OpenRC/);
    expect(refused({ os_id: "alpine", init: "openrc" }, { ...CHOICES, requireSystemd: true })).toMatch(/Alpine \(OpenRC\) host/);
  });

  it("prints the host facts in POSIX sh, before bash exists, and never installs anything while probing", () => {
    expectCleanPosix(HOST_FACTS_SH);
    const path = busyboxPath();
    const remote = renderProbeRemoteCommand("echo never-run", HOST_FACTS_KEY, HOST_FACTS_SH);
    const run = spawnSync(BUSYBOX, ["ash", "-c", remote], { env: { PATH: path }, encoding: "utf8" });
    expect(run.status).toBe(0);
    const session = parseProbeSession(`${run.stdout}\n@@gitea-homelab-session exit 0`, "root@alpine:22");
    expect(session.ok).toBe(true);
    expect(session.sections[HOST_FACTS_KEY].init).toMatch(/^(systemd|openrc|.+)$/);
    expect(session.sections[HOST_FACTS_KEY].os_id).toBe(readFileSync("/etc/os-release", "utf8").match(/^ID=(.*)$/m)![1].replace(/"/g, ""));
    expect(run.stdout).not.toContain("never-run");
  });
});
