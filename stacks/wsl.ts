/**
 * The wsl role: a Fedora WSL2 VM (or any systemd host) becomes a registered, running Gitea
 * Actions runner whose jobs run in Podman, with the instance URL and token taken from the
 * server stack (or from config for a Gitea this program did not make).
 */
import * as pulumi from "@pulumi/pulumi";
import { ActRunner } from "../components/runner/actRunner";
import { RunnerSettings } from "../components/runner/render";
import { Host } from "../components/host/host";
import { checkCaCertificate } from "../components/tls/certificate";
import { ConfigError, PROJECT } from "./config";
import { requireSsh } from "./reachability";
import { instanceUrlProblem, readWslConfig, WSL_SYSTEMD_ADVICE, WslSecrets, WslSettings } from "./wslConfig";

export function buildWslStack(settings: WslSettings, secrets: WslSecrets) {
  let instanceUrl: pulumi.Output<string>;
  let token: pulumi.Output<string>;
  let giteaAdmin: pulumi.Output<{ username: string; password: string } | undefined>;
  // Gitea's CA: caCertificate from config, else the server stack's own CA (tls own-ca).
  let caCertificate: pulumi.Output<string | undefined> = pulumi.output(settings.caCertificate);
  if (settings.instance.kind === "stack") {
    const server = new pulumi.StackReference(settings.instance.serverStack);
    const serverStack = settings.instance.serverStack;
    instanceUrl = server.getOutput("giteaUrl").apply((url: unknown) => {
      if (typeof url !== "string") throw new ConfigError([`${PROJECT}:serverStack: stack ${serverStack} has no giteaUrl output; run its up first, or set gitea-homelab:instanceUrl`]);
      const problem = instanceUrlProblem(url);
      if (problem) throw new ConfigError([`${PROJECT}:serverStack: giteaUrl of ${serverStack} ${problem}; set gitea-homelab:publicHost there`]);
      return url;
    });
    if (settings.caCertificate === undefined) {
      caCertificate = server.getOutput("caCertificate").apply((pem: unknown) => {
        if (pem === undefined || pem === null || pem === "") return undefined;
        const checked = typeof pem === "string" ? checkCaCertificate(pem) : { problem: "is not text" };
        if ("problem" in checked) throw new ConfigError([`${PROJECT}:serverStack: caCertificate of ${serverStack} ${checked.problem}; set gitea-homelab:caCertificate`]);
        return checked.certificate;
      });
    }
    token = pulumi.secret(server.getOutput("runnerRegistrationToken").apply((t: unknown) => String(t ?? "")));
    // The server stack's admin, so that destroy removes the runner from Gitea as well.
    giteaAdmin = pulumi.secret(
      pulumi.all([server.getOutput("adminUsername"), server.getOutput("adminPassword")]).apply(([username, password]: unknown[]) =>
        typeof username === "string" && typeof password === "string" && username !== "" && password !== "" ? { username, password } : undefined,
      ),
    );
  } else {
    instanceUrl = pulumi.output(settings.instance.instanceUrl);
    token = pulumi.secret(secrets.registrationToken.apply((t) => t ?? ""));
    giteaAdmin = pulumi.output(undefined);
  }

  const host = new Host("wsl", {
    host: settings.connection.host,
    port: settings.connection.port,
    user: settings.connection.user,
    hostKey: settings.connection.hostKey,
    privateKey: secrets.privateKey,
    firewall: "none",
    requireSystemd: true,
    systemdAdvice: WSL_SYSTEMD_ADVICE,
  });

  const runnerSettings = pulumi.all([instanceUrl, caCertificate]).apply(
    ([url, ca]): RunnerSettings => ({
      binaryPath: settings.binaryPath,
      ...(settings.replacedBinaryPath === undefined ? {} : { replacedBinaryPath: settings.replacedBinaryPath }),
      source: settings.source,
      // Fixed names, whatever runnerBinaryName says: a stack that changes the binary (as the
      // default did, act_runner to gitea-runner) keeps its unit, config and registration.
      configDir: "/etc/act_runner",
      stateDir: "/var/lib/act_runner",
      name: settings.runnerName,
      labels: settings.labels,
      capacity: settings.capacity,
      timeout: settings.timeout,
      instanceUrl: url,
      serviceName: "act_runner.service",
      caCertificate: ca,
      network: settings.network,
    }),
  );
  const runner = new ActRunner("runner", { host, settings: runnerSettings, registrationToken: token, giteaAdmin, registerTimeoutSeconds: settings.registerTimeoutSeconds });

  return {
    runnerName: settings.runnerName,
    labels: settings.labels,
    instanceUrl,
    binaryVersion: runner.binaryVersion,
    runnerRecordOnDestroy:
      settings.instance.kind === "stack"
        ? "pulumi destroy removes the runner from this host and from Gitea (with the server stack's admin)"
        : "pulumi destroy removes the runner from this host; with gitea-homelab:instanceUrl this stack has no Gitea admin, so Gitea lists the runner as offline until an admin deletes it under Site Administration > Actions > Runners",
  };
}

export async function wslStack() {
  const { settings, secrets } = readWslConfig();
  await requireSsh(settings.connection);
  return buildWslStack(settings, secrets);
}
