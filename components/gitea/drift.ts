/** Gitea's image in the rootless user's storage, its probe and comparison. */
import { HostCheck } from "../host/checkedCommand";
import { Facts } from "../host/probeSession";
import { podmanPresence, renderPodmanExistsProbe } from "../render/podman";

export function imageDrift(image: string, facts: Facts | undefined): string[] {
  const presence = podmanPresence(facts, "image");
  if (presence === "present") return [];
  if (presence === "missing") return [`image ${image}: missing from the user's storage, expected present`];
  return [`image ${image}: state unknown (${presence.unknown})`];
}

export function imageCheck(user: string, image: string): HostCheck {
  return { probe: renderPodmanExistsProbe("image", user, image), compare: (facts) => imageDrift(image, facts) };
}
