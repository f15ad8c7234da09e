/**
 * AcmeCertificate (tls acme): after Gitea is healthy, the certificate it got from the ACME CA
 * names publicHost and is not past its renewal. Gitea (certmagic) obtains and renews it itself;
 * preview shows one it failed to renew as drift, and up restarts Gitea, which renews at start.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { unitPaths } from "../giteaService/render";
import { Host } from "../host/host";
import { acmeServedCheck } from "./drift";
import { AcmeSpec, renderAcmeCheckScript } from "./render";

export interface AcmeCertificateArgs {
  host: Host;
  user: pulumi.Input<string>;
  publicHost: pulumi.Input<string>;
  httpPort: pulumi.Input<number>;
  containerName: string;
  timeoutSeconds: pulumi.Input<number>;
}

export class AcmeCertificate extends pulumi.ComponentResource {
  readonly checked: command.remote.Command;

  constructor(name: string, args: AcmeCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:AcmeCertificate", name, {}, opts);
    const spec = pulumi.all([args.host.platform, args.user, args.publicHost, args.httpPort, args.timeoutSeconds]).apply(
      ([platform, user, publicHost, httpPort, timeoutSeconds]): AcmeSpec => {
        const paths = unitPaths(platform.unitStyle, args.containerName);
        return { init: platform.init, user, service: paths.service, publicHost, httpPort, timeoutSeconds, logFile: unitPaths("openrc", args.containerName).logFile! };
      },
    );
    // The probe reads only config, never the probe session's platform.
    const probe = pulumi.all([args.publicHost, args.httpPort]).apply(([publicHost, httpPort]) => acmeServedCheck({ publicHost, httpPort }).probe);
    this.checked = args.host.converge(
      `${name}-certificate`,
      { create: spec.apply(renderAcmeCheckScript), check: spec.apply((s) => acmeServedCheck(s)), probe },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.registerOutputs({});
  }
}
