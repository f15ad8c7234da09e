/** The Podman volume, its probe and comparison. */
import { HostCheck } from "../host/checkedCommand";
import { Facts } from "../host/probeSession";
import { podmanPresence, renderPodmanExistsProbe } from "../render/podman";

/** A missing volume is said loudly: what was in it is gone, and converging makes an empty one. */
export function volumeDrift(volume: string, facts: Facts | undefined): string[] {
  const presence = podmanPresence(facts, "volume");
  if (presence === "present") return [];
  if (presence === "missing") {
    return [`volume ${volume}: MISSING; the data it held may be lost; pulumi up creates it again, EMPTY (restore a backup into it)`];
  }
  return [`volume ${volume}: state unknown (${presence.unknown})`];
}

export function volumeCheck(owner: string, volume: string): HostCheck {
  return { probe: renderPodmanExistsProbe("volume", owner, volume), compare: (facts) => volumeDrift(volume, facts) };
}
