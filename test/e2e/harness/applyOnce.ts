/**
 * A first, create-only engine stand-in: runs the real program under Pulumi's mocks and executes
 * every remote.Command's `create` over SSH as it is registered (the SDK registers a resource only
 * after its dependencies, so the order is the engine's). `destroy` runs the recorded `delete`
 * scripts in reverse order, skipping retained resources.
 */
import { randomBytes, randomInt } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { mockState, unwrapSecrets } from "../../helpers/pulumiMocks";
import { Connection, RunResult, sshRun } from "./ssh";

export interface ExecutedCommand {
  name: string;
  result: RunResult;
  deleteCommand?: string;
  connection: Connection;
  retain: boolean;
}

/** Runs the program once; `executed` receives each command as it runs, also when one fails. */
export async function applyOnce(config: Record<string, string>, log: (line: string) => void, executed: ExecutedCommand[] = []): Promise<{ executed: ExecutedCommand[]; outputs: Record<string, unknown> }> {
  let failure: Error | undefined;
  await pulumi.runtime.setMocks(
    {
      newResource: async (mockArgs) => {
        const args = { ...mockArgs, inputs: unwrapSecrets(mockArgs.inputs) };
        const random = randomState(args.type, args.inputs);
        if (random) return { id: `${args.name}-id`, state: random };
        if (args.type !== "command:remote:Command" || failure) return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
        const connection = args.inputs.connection as Connection;
        log(`> ${args.name}`);
        const result = await sshRun(connection, args.inputs.create, args.inputs.stdin);
        log(`  exit ${result.code} in ${result.ms} ms\n${indent(result.stdout)}${indent(result.stderr)}`);
        executed.push({ name: args.name, result, deleteCommand: args.inputs.delete, connection, retain: false });
        if (result.code !== 0) failure = new Error(`${args.name} failed (exit ${result.code}): ${result.stderr.trim().split("\n").slice(-5).join(" | ")}`);
        return { id: `${args.name}-id`, state: { ...args.inputs, stdout: result.stdout, stderr: result.stderr } };
      },
      call: (args) => args.inputs,
    },
    "gitea-homelab",
    "server",
    false,
  );
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`gitea-homelab:${k}`, v])), ["gitea-homelab:privateKey"]);
  const { main } = await import("../../../program");
  const outputs = await main();
  await Promise.all(Object.values(outputs).map((o) => new Promise((resolve) => pulumi.output(o as any).apply(resolve))));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
  if (failure) throw failure;
  return { executed, outputs };
}

/** Real random values, as the random provider would make (alphanumeric passwords, raw bytes). */
function randomState(type: string, inputs: Record<string, any>): Record<string, any> | undefined {
  if (type === "random:index/randomPassword:RandomPassword") {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const result = Array.from({ length: inputs.length }, () => alphabet[randomInt(alphabet.length)]).join("");
    return { ...inputs, result };
  }
  if (type === "random:index/randomBytes:RandomBytes") {
    const bytes = randomBytes(inputs.length);
    return { ...inputs, base64: bytes.toString("base64"), hex: bytes.toString("hex") };
  }
  return undefined;
}

function indent(text: string): string {
  return text.trim() === "" ? "" : `${text.trimEnd().replace(/^/gm, "    ")}\n`;
}
