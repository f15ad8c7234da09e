import { describe, expect, it } from "vitest";
import { portDrift } from "./drift";
import { Facts } from "../host/probeSession";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("firewall port drift", () => {
  const spec = { port: 4111, protocol: "tcp" as const };
  it("is empty when open at runtime and permanently", () => {
    expect(portDrift(spec, { firewalld: "running", zone: "", runtime: "open", permanent: "open" })).toEqual([]);
  });
  it("says closed, and which half is missing", () => {
    expect(portDrift(spec, { firewalld: "running", zone: "", runtime: "closed", permanent: "closed" })).toEqual(["firewall 4111/tcp: closed, expected open"]);
    expect(portDrift({ ...spec, zone: "FedoraServer" }, { firewalld: "running", zone: "FedoraServer", runtime: "closed", permanent: "closed" })).toEqual([
      "firewall 4111/tcp: closed in zone FedoraServer, expected open",
    ]);
    expect(portDrift(spec, { firewalld: "running", runtime: "closed", permanent: "open" })[0]).toMatch(/closed at runtime .*expected open/);
    expect(portDrift(spec, { firewalld: "running", runtime: "open", permanent: "closed" })[0]).toMatch(/not in the permanent config .*closes at reboot/);
  });
  it("says when firewalld is stopped or missing", () => {
    expect(portDrift(spec, { firewalld: "stopped" })).toEqual(["firewall 4111/tcp: firewalld is not running, expected open"]);
    expect(portDrift(spec, { firewalld: "missing" })).toEqual(["firewall 4111/tcp: firewalld is not installed, expected open"]);
  });
  it("counts empty or garbage output as unknown, which converges again", () => {
    for (const facts of [undefined, {}, GARBAGE]) expect(portDrift(spec, facts)).toEqual(["firewall 4111/tcp: state unknown (probe output unreadable)"]);
  });
});
