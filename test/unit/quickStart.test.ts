/**
 * The README's quick start, followed literally: copy the example stack file, edit only what
 * the quick start names (host, adminEmail), and the Gitea this makes answers at that host.
 */
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runWithMocks } from "../helpers/pulumiMocks";

const README = readFileSync(`${__dirname}/../../README.md`, "utf8");

/** A user's edit of the example file: the two lines the quick start names, nothing else. */
function editedExample(file: string, host: string, email: string): Record<string, string> {
  const text = readFileSync(`${__dirname}/../../${file}`, "utf8")
    .replace(/^(\s*gitea-homelab:host:).*$/m, `$1 ${host}`)
    .replace(/^(\s*gitea-homelab:adminEmail:).*$/m, `$1 ${email}`);
  const config = parse(text).config as Record<string, unknown>;
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k.replace(/^gitea-homelab:/, ""), String(v)]));
}

describe("the quick start", () => {
  it("names the two keys to edit, and the test command names every tool the tests need", () => {
    const quickStart = README.slice(README.indexOf("## Quick start"), README.indexOf("## What `pulumi up -s server` does"));
    expect(quickStart).toContain("`host`, `adminEmail`");
    expect(quickStart).toMatch(/apt-get install[^\n]*shellcheck[^\n]*busybox-static/);
  });

  it("requires the Node that @pulumi/pulumi requires, and the tests run on it", () => {
    const sdkEngines = JSON.parse(readFileSync(require.resolve("@pulumi/pulumi/package.json"), "utf8")).engines.node as string;
    const required = Number(/^>=\s*(\d+)/.exec(sdkEngines)?.[1]);
    expect(required).toBeGreaterThanOrEqual(22);
    expect(README.slice(0, README.indexOf("```"))).toContain(`Node ${required}+`);
    expect(JSON.parse(readFileSync(`${__dirname}/../../package.json`, "utf8")).engines.node).toBe(`>=${required}`);
    expect(Number(process.versions.node.split(".")[0]), `tests run on Node ${process.versions.node}`).toBeGreaterThanOrEqual(required);
  });

  for (const file of ["Pulumi.server.yaml", "Pulumi.alpine.yaml"]) {
    it(`${file} with only host and adminEmail edited gives a Gitea at that host`, async () => {
      const config = editedExample(file, "10.20.30.40", "me@home.example");
      const { validateServerConfig } = await import("../../stacks/serverConfig");
      const { settings, problems } = validateServerConfig(config);
      expect(problems).toEqual([]);
      const run = await runWithMocks(config, async () => {
        const { buildServerStack } = await import("../../stacks/server");
        return buildServerStack(settings, { privateKey: pulumi.output(undefined), adminPassword: pulumi.output(undefined), tlsKey: pulumi.output(undefined) });
      });
      expect(await run.value(run.outputs.giteaUrl)).toBe("https://10.20.30.40:4111/");
      expect(await run.value(run.outputs.sshCloneBase)).toBe("ssh://git@10.20.30.40:3333/");
      const unit = run.byName("gitea-service-unit").script as string;
      expect(unit).toContain("GITEA__server__ROOT_URL=https://10.20.30.40:4111/");
      expect(unit).toContain("GITEA__server__SSH_DOMAIN=10.20.30.40");
      expect(unit).not.toMatch(/192\.168\.1\.\d+/);
    });
  }
});
