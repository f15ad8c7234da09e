/**
 * Chooses what this stack builds: `role` config, else the stack's name (server, wsl).
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, controlCharacterProblem, PROJECT } from "./stacks/config";
import { serverStack } from "./stacks/server";
import { wslStack } from "./stacks/wsl";

const ROLES: Record<string, () => Promise<Record<string, unknown>>> = {
  server: serverStack,
  wsl: wslStack,
};

export function resolveRole(configured: string | undefined, stackName: string): string {
  const problem = controlCharacterProblem(configured);
  if (problem) throw new ConfigError([`${PROJECT}:role: ${problem}, got ${JSON.stringify(configured)}`]);
  const role = configured?.trim() || stackName;
  if (!(role in ROLES)) {
    throw new ConfigError([
      `${PROJECT}:role: ${configured?.trim() ? `${JSON.stringify(role)} is not a role` : `stack ${JSON.stringify(stackName)} is not named after a role; set it`}; supported roles: ${Object.keys(ROLES).join(", ")}`,
    ]);
  }
  return role;
}

export async function main(): Promise<Record<string, unknown>> {
  const role = resolveRole(new pulumi.Config(PROJECT).get("role"), pulumi.getStack());
  return ROLES[role]();
}
