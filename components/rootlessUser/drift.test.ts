import { describe, expect, it } from "vitest";
import { Facts } from "../host/probeSession";
import { rootlessUserDrift } from "./drift";
import { ALPINE, FEDORA } from "../../test/helpers/fixtures";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("rootless user drift", () => {
  const ok = { account: "present", linger: "on", subuid: "present", subgid: "present" };
  it("is empty for an account with linger and subordinate ranges", () => {
    expect(rootlessUserDrift("rootless", ok, FEDORA)).toEqual([]);
  });
  it("says linger is off, ranges are gone, or the account is", () => {
    expect(rootlessUserDrift("rootless", { ...ok, linger: "off" }, FEDORA)).toEqual([
      "user rootless: linger off, expected on (without it Gitea stops at logout and does not start at boot)",
    ]);
    expect(rootlessUserDrift("rootless", { ...ok, subgid: "missing" }, FEDORA)).toEqual(["user rootless: no /etc/subgid range, expected one"]);
    expect(rootlessUserDrift("rootless", { account: "missing" }, FEDORA)).toEqual(["user rootless: account missing, expected present"]);
  });
  it("expects no linger on an OpenRC host, whose service starts the container at boot", () => {
    expect(rootlessUserDrift("rootless", { ...ok, linger: "n/a" }, ALPINE)).toEqual([]);
    expect(rootlessUserDrift("rootless", { ...ok, linger: "n/a" }, FEDORA)).toHaveLength(1);
  });
  it("counts empty or garbage output as unknown", () => {
    for (const facts of [undefined, {}, GARBAGE]) expect(rootlessUserDrift("rootless", facts, FEDORA)).toEqual(["user rootless: state unknown (probe output unreadable)"]);
  });
});
