import { describe, expect, it } from "vitest";
import { imageDrift } from "./drift";
import { Facts } from "../host/probeSession";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("image drift", () => {
  it("says a missing image is missing", () => {
    expect(imageDrift("img", { image: "present" })).toEqual([]);
    expect(imageDrift("img", { image: "missing" })).toEqual(["image img: missing from the user's storage, expected present"]);
    for (const facts of [undefined, {}, GARBAGE]) expect(imageDrift("img", facts)[0]).toMatch(/^image img: state unknown/);
  });
});
