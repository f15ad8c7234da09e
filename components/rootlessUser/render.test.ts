import { describe, expect, it } from "vitest";
import { renderRootlessUserDeleteScript, renderRootlessUserScript } from "./render";
import { expectCleanScript } from "../../test/helpers/scripts";
import { ALPINE, FEDORA } from "../../test/helpers/fixtures";

describe("the rootless user's scripts", () => {
  it("are told the init system and OS family, and never look for them", () => {
    for (const script of [renderRootlessUserScript(FEDORA, "rootless", 120), renderRootlessUserDeleteScript(FEDORA, "rootless", true)]) {
      expectCleanScript(script);
      expect(script).not.toContain("/run/systemd/system");
      expect(script).not.toContain("os-release");
      expect(script).toContain("init='systemd'");
    }
  });

  it("on Alpine give a runtime dir instead of linger, and the storage driver chosen as asked", () => {
    const script = renderRootlessUserScript(ALPINE, "rootless", 120, "vfs");
    expectCleanScript(script);
    expect(script).toContain("init='openrc'");
    expect(script).toContain("os_family='alpine'");
    expect(script).toContain("storage_driver='vfs'");
    expect(script).toContain('install -d -m 700 -o "$user" -g "$group" "/run/user/$uid"');
    expect(script).toMatch(/\/run\/\.containerenv[\s\S]*driver=vfs[\s\S]*btrfs[\s\S]*driver=overlay/);
  });
});
