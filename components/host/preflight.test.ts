import { describe, expect, it } from "vitest";
import { renderHostPreflightScript } from "./preflight";
import { expectCleanScript } from "../../test/helpers/scripts";
import { ALPINE, DEBIAN, FEDORA } from "../../test/helpers/fixtures";

describe("the preflight", () => {
  it("is given the decided platform and detects nothing again: no os-release, one assertion of PID 1", () => {
    for (const platform of [FEDORA, DEBIAN, ALPINE]) {
      const script = renderHostPreflightScript(platform);
      expectCleanScript(script);
      expect(script).not.toContain("os-release");
      expect(script.match(/\/run\/systemd\/system/g)).toHaveLength(1);
      expect(script).toContain(`init='${platform.init}'`);
      expect(script).toContain(`package_manager='${platform.packageManager}'`);
      expect(script).toContain(`firewall='${platform.firewall}'`);
    }
  });

  it("installs each missing tool with the package that provides it on that OS", () => {
    expect(renderHostPreflightScript(FEDORA)).toContain("newuidmap:shadow-utils");
    expect(renderHostPreflightScript(DEBIAN)).toContain("newuidmap:uidmap");
    expect(renderHostPreflightScript(ALPINE)).toContain("newuidmap:shadow-subids");
    // Alpine's busybox has no useradd/usermod --add-subuids nor runuser; Fedora and Debian ship them.
    expect(renderHostPreflightScript(ALPINE)).toContain("usermod:shadow runuser:runuser");
    expect(renderHostPreflightScript(FEDORA)).toContain("usermod: runuser:");
  });

  it("requires Quadlet's Podman only for the Quadlet style, and firewalld only when the firewall is firewalld", () => {
    expect(renderHostPreflightScript(FEDORA)).toContain("require_quadlet='true'");
    expect(renderHostPreflightScript({ ...FEDORA, unitStyle: "service" })).toContain("require_quadlet='false'");
    expect(renderHostPreflightScript(ALPINE)).toContain("require_quadlet='false'");
    expect(renderHostPreflightScript(ALPINE)).toContain("firewall='none'");
  });

  it("on Alpine installs with apk, enables cgroups and loads tun and fuse at boot", () => {
    const script = renderHostPreflightScript(ALPINE);
    expect(script).toContain("package_manager='apk'");
    expect(script).toContain('install_packages "$package_manager" "${missing[@]}"');
    expect(script).toContain('apk) apk add --update-cache --quiet --no-progress "$@" ;;');
    expect(script).toContain("rc-update add cgroups");
    expect(script).toMatch(/for module in tun fuse; do[\s\S]*\/etc\/modules/);
  });
});
