/**
 * GiteaTls: Gitea's HTTPS certificate on the host (see render.ts): its volume, and the command
 * that makes the CA and issues the certificate (own-ca), installs the owner's (given), or readies
 * the volume for ACME (acme: Gitea obtains the certificate itself; see acmeCertificate.ts). The CA
 * is kept on destroy like Gitea's keys, removed with the data when the stack sets destroyData.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { unitPaths } from "../giteaService/render";
import { Host } from "../host/host";
import { PodmanVolume } from "../volume/podmanVolume";
import { firstCertificate } from "./certificate";
import { acmeCaRootDigest, acmeSetupCheck, givenChainDigest, renderAcmeSetupProbe, givenCheck, ownCaCheck, renderTlsProbe } from "./drift";
import { renderAcmeSetupScript, renderGivenCertificateScript, renderOwnCaInstallScript, renderTlsDeleteScript, TLS_VOLUME, TlsSpec } from "./render";

export interface GiteaTlsArgs {
  host: Host;
  user: pulumi.Input<string>;
  /** own-ca, given or acme (off makes no GiteaTls); plain, since it decides which commands exist. */
  mode: "own-ca" | "given" | "acme";
  publicHost: pulumi.Input<string>;
  containerName: string;
  /** given: the chain (server's certificate first) and its key (secret). */
  given?: { chain: pulumi.Input<string>; key: pulumi.Input<string> };
  /** acme: the root the ACME CA's own HTTPS chains to (PEM), when it is a private CA. */
  acmeCaRoot?: string;
  destroyData: boolean;
}

export class GiteaTls extends pulumi.ComponentResource {
  readonly ready: command.remote.Command;
  /** own-ca: the CA's certificate (PEM), for browsers, git and runners to trust; given: undefined. */
  readonly caCertificate: pulumi.Output<string | undefined>;

  constructor(name: string, args: GiteaTlsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:GiteaTls", name, {}, opts);
    const user = pulumi.output(args.user);
    // Regenerated from the CA or the config, so removed on every destroy.
    const volume = new PodmanVolume("gitea-tls", { host: args.host, owner: user, volumeName: TLS_VOLUME, destroyData: true }, { parent: this, dependsOn: opts?.dependsOn });
    const spec = pulumi.all([args.host.platform, user, args.publicHost]).apply(
      ([platform, u, publicHost]): TlsSpec => ({ init: platform.init, user: u, service: unitPaths(platform.unitStyle, args.containerName).service, publicHost }),
    );
    // The probe waits for nothing the probe session decides (the platform comes from it).
    const probe = pulumi.all([user, args.publicHost]).apply(([u, publicHost]) => renderTlsProbe({ user: u, publicHost }));
    const del = spec.apply((s) => renderTlsDeleteScript(s, args.destroyData));
    if (args.mode === "own-ca") {
      this.ready = args.host.converge(
        `${name}-certificate`,
        { create: spec.apply(renderOwnCaInstallScript), delete: del, check: spec.apply(ownCaCheck), probe },
        { parent: this, dependsOn: [volume] },
      );
      this.caCertificate = this.ready.stdout.apply((out) => firstCertificate(out));
    } else if (args.mode === "acme") {
      this.ready = args.host.converge(
        `${name}-certificate`,
        {
          create: spec.apply(renderAcmeSetupScript),
          delete: del,
          stdin: args.acmeCaRoot ?? "",
          check: spec.apply((s) => acmeSetupCheck(s, acmeCaRootDigest(args.acmeCaRoot))),
          probe: user.apply((u) => renderAcmeSetupProbe({ user: u })),
        },
        { parent: this, dependsOn: [volume] },
      );
      this.caCertificate = pulumi.output(undefined);
    } else {
      const given = args.given!;
      const chain = pulumi.output(given.chain);
      this.ready = args.host.converge(
        `${name}-certificate`,
        {
          create: spec.apply(renderGivenCertificateScript),
          delete: del,
          // The key first, then the chain; the script tells them apart by their PEM headers.
          stdin: pulumi.secret(pulumi.all([given.key, chain]).apply(([key, c]) => `${key.trim()}\n${c}`)),
          secret: true,
          check: pulumi.all([spec, chain]).apply(([s, c]) => givenCheck(s, givenChainDigest(c))),
          probe,
        },
        { parent: this, dependsOn: [volume] },
      );
      this.caCertificate = pulumi.output(undefined);
    }
    this.registerOutputs({ caCertificate: this.caCertificate });
  }
}
