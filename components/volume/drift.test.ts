import { describe, expect, it } from "vitest";
import { imageDrift } from "../gitea/drift";
import { volumeDrift } from "./drift";
import { Facts } from "../host/probeSession";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("volume drift", () => {
  it("is empty when the volume exists", () => {
    expect(volumeDrift("gitea-data", { volume: "present" })).toEqual([]);
  });
  it("says loudly that a missing volume may mean lost data and comes back empty", () => {
    const [text] = volumeDrift("gitea-data", { volume: "missing" });
    expect(text).toMatch(/^volume gitea-data: MISSING; the data it held may be lost; .*EMPTY/);
  });
  it("leaves a volume it could not check to the user's drift (linger off: no user manager, no podman)", () => {
    expect(volumeDrift("gitea-data", { volume: "unchecked" })).toEqual([]);
    expect(imageDrift("img", { image: "unchecked" })).toEqual([]);
  });

  it("counts a podman error, empty or garbage output as unknown", () => {
    expect(volumeDrift("v", { volume: "unknown (podman exit 125)" })).toEqual(["volume v: state unknown (unknown (podman exit 125))"]);
    for (const facts of [undefined, {}, GARBAGE]) expect(volumeDrift("v", facts)[0]).toMatch(/^volume v: state unknown/);
  });
});
